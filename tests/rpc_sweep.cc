#include "tests/rpc_sweep.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/message.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "proto/cases.pb.h"
#include "proto/ledger.grpc.pb.h"
#include "tests/test_events.h"

namespace caseledger::testing {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

struct Method {
  std::string name;  // "/caseledger.v1.LedgerService/Append"
  const Descriptor* input = nullptr;
};

std::vector<Method> AllMethods() {
  // Touch the generated types so that their descriptors are linked in.
  (void)v1::AppendRequest::descriptor();
  (void)v1::GetCaseRequest::descriptor();
  std::vector<Method> out;
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  for (const char* service : {"caseledger.v1.LedgerService", "caseledger.v1.CaseService",
                              "caseledger.v1.DisclosureService"}) {
    const auto* s = pool->FindServiceByName(service);
    if (s == nullptr) continue;
    for (int i = 0; i < s->method_count(); ++i) {
      out.push_back({absl::StrCat("/", service, "/", s->method(i)->name()),
                     s->method(i)->input_type()});
    }
  }
  out.push_back({"/caseledger.v1.LedgerService/NoSuchMethod", v1::AppendRequest::descriptor()});
  return out;
}

class Fuzzer {
 public:
  explicit Fuzzer(uint64_t seed) : rng_(seed) {}

  std::string Bytes(size_t n) {
    std::string s(n, '\0');
    for (char& c : s) c = static_cast<char>(rng_());
    return s;
  }

  size_t Below(size_t n) { return n == 0 ? 0 : rng_() % n; }
  bool Coin(int one_in) { return Below(one_in) == 0; }

  std::string Text() {
    static const char* kIds[] = {"case-a", "case-b", "client-1", "sweep-writer", "@access",
                                 "housing", "", "e1"};
    switch (Below(5)) {
      case 0:
        return kIds[Below(8)];
      case 1:
        return std::string(Below(3000), 'x');  // longer than every id limit
      case 2:
        return Bytes(Below(40));  // often not UTF-8
      default:
        return absl::StrCat("f", rng_() % 1000);
    }
  }

  uint64_t Number() {
    static const uint64_t kEdges[] = {0, 1, 2, 255, 1u << 31, ~0ull, ~0ull >> 1, 1ull << 63};
    return Coin(2) ? kEdges[Below(8)] : rng_() % 100;
  }

  void Fill(Message* m, int depth) {
    const Descriptor* d = m->GetDescriptor();
    const Reflection* r = m->GetReflection();
    for (int i = 0; i < d->field_count(); ++i) {
      const FieldDescriptor* f = d->field(i);
      if (!Coin(2)) continue;
      int n = f->is_repeated() ? static_cast<int>(Below(Coin(8) ? 80 : 4)) : 1;
      for (int k = 0; k < n; ++k) Set(m, r, f, depth);
    }
  }

  void Set(Message* m, const Reflection* r, const FieldDescriptor* f, int depth) {
    const bool rep = f->is_repeated();
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING: {
        std::string v = Text();
        rep ? r->AddString(m, f, v) : r->SetString(m, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_INT32:
        rep ? r->AddInt32(m, f, static_cast<int32_t>(Number()))
            : r->SetInt32(m, f, static_cast<int32_t>(Number()));
        break;
      case FieldDescriptor::CPPTYPE_INT64:
        rep ? r->AddInt64(m, f, static_cast<int64_t>(Number()))
            : r->SetInt64(m, f, static_cast<int64_t>(Number()));
        break;
      case FieldDescriptor::CPPTYPE_UINT32:
        rep ? r->AddUInt32(m, f, static_cast<uint32_t>(Number()))
            : r->SetUInt32(m, f, static_cast<uint32_t>(Number()));
        break;
      case FieldDescriptor::CPPTYPE_UINT64:
        rep ? r->AddUInt64(m, f, Number()) : r->SetUInt64(m, f, Number());
        break;
      case FieldDescriptor::CPPTYPE_BOOL:
        rep ? r->AddBool(m, f, Coin(2)) : r->SetBool(m, f, Coin(2));
        break;
      case FieldDescriptor::CPPTYPE_ENUM: {
        int v = Coin(3) ? static_cast<int>(Number() % 1000) : static_cast<int>(Below(4));
        rep ? r->AddEnumValue(m, f, v) : r->SetEnumValue(m, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_MESSAGE:
        if (depth < 4) Fill(rep ? r->AddMessage(m, f) : r->MutableMessage(m, f), depth + 1);
        break;
      default:
        break;
    }
  }

  // One request body for `method`: random bytes, oversized, a random
  // well-formed message, a damaged one, or nothing.
  std::string Request(const Method& method, size_t max_message_bytes) {
    switch (Below(6)) {
      case 0:
        return Bytes(Below(512));
      case 1: {
        // Just over the limit; a repeated random block keeps this cheap at
        // the default 16 MiB.
        std::string block = Bytes(4096);
        std::string big;
        big.reserve(max_message_bytes + 8192);
        while (big.size() <= max_message_bytes) big += block;
        big.resize(max_message_bytes + 1 + Below(1024));
        return big;
      }
      case 2:
        return "";
      default: {
        google::protobuf::DynamicMessageFactory factory;
        std::unique_ptr<Message> m(factory.GetPrototype(method.input)->New());
        Fill(m.get(), 0);
        std::string bytes = m->SerializeAsString();
        if (Coin(3) && !bytes.empty()) {
          switch (Below(3)) {
            case 0:
              bytes.resize(Below(bytes.size()));  // truncated
              break;
            case 1:
              bytes[Below(bytes.size())] ^= static_cast<char>(1 + Below(255));
              break;
            default:
              bytes += Bytes(1 + Below(16));
          }
        }
        return bytes;
      }
    }
  }

 private:
  std::mt19937_64 rng_;
};

grpc::Status Call(grpc::GenericStub& stub, const std::string& method, const std::string& body,
                  absl::Duration deadline) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  grpc::Slice slice(body.data(), body.size());
  grpc::ByteBuffer req(&slice, 1);
  grpc::ByteBuffer resp;
  grpc::Status status;
  absl::Notification done;
  stub.UnaryCall(&ctx, method, grpc::StubOptions(), &req, &resp, [&](grpc::Status s) {
    status = std::move(s);
    done.Notify();
  });
  done.WaitForNotification();
  return status;
}

const char* CodeName(grpc::StatusCode code) {
  static const char* kNames[] = {
      "OK",        "CANCELLED",         "UNKNOWN",        "INVALID_ARGUMENT",    "DEADLINE_EXCEEDED",
      "NOT_FOUND", "ALREADY_EXISTS",    "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
      "ABORTED",   "OUT_OF_RANGE",      "UNIMPLEMENTED",  "INTERNAL",            "UNAVAILABLE",
      "DATA_LOSS", "UNAUTHENTICATED"};
  int c = static_cast<int>(code);
  return c >= 0 && c <= 16 ? kNames[c] : "?";
}

v1::AppendRequest WriterEvent(const std::string& case_id, uint64_t n) {
  v1::AppendRequest r = testing::EventRequest(absl::StrCat(case_id, "-", n), case_id, "client-w",
                                              "intake", testing::kNoteAt + n);
  if (n == 0) {
    testing::SetCaseOpened(r.mutable_event());
  } else {
    testing::SetNote(r.mutable_event());
  }
  return r;
}

}  // namespace

SweepReport RunSweep(const std::vector<std::shared_ptr<grpc::Channel>>& fuzz,
                     std::shared_ptr<grpc::Channel> writer, const SweepOptions& options) {
  // The fuzzers serialize strings that are not UTF-8 on purpose; protobuf
  // would log each one.
  google::protobuf::SetLogHandler(
      +[](google::protobuf::LogLevel, const char*, int, const std::string&) {});
  const std::vector<Method> methods = AllMethods();
  const absl::Time end = absl::Now() + options.duration;
  SweepReport report;
  absl::Mutex mu;

  std::thread writer_thread([&] {
    auto stub = v1::LedgerService::NewStub(writer);
    for (uint64_t n = 0; absl::Now() < end; ++n) {
      v1::AppendRequest req = WriterEvent(options.writer_case, n);
      grpc::ClientContext ctx;
      ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
      v1::AppendResponse resp;
      grpc::Status s = stub->Append(&ctx, req, &resp);
      absl::MutexLock lock(&mu);
      if (s.ok()) {
        ++report.writer_acked;
        report.writer_event_ids.push_back(req.event().event_id());
      } else {
        report.writer_errors.push_back(absl::StrCat(req.event().event_id(), ": ",
                                                    CodeName(s.error_code()), ": ",
                                                    s.error_message()));
        if (n == 0) return;  // the case did not open: nothing else can land
      }
    }
  });

  std::vector<std::thread> fuzzers;
  for (int t = 0; t < options.threads; ++t) {
    fuzzers.emplace_back([&, t] {
      Fuzzer fuzzer(options.seed * 1000003 + t);
      std::vector<std::unique_ptr<grpc::GenericStub>> stubs;
      for (const auto& c : fuzz) stubs.push_back(std::make_unique<grpc::GenericStub>(c));
      std::map<std::string, uint64_t> codes;
      std::map<std::string, std::string> sample;
      uint64_t calls = 0;
      while (absl::Now() < end) {
        const Method& m = methods[fuzzer.Below(methods.size())];
        std::string body = fuzzer.Request(m, options.max_message_bytes);
        // Sending an oversized body takes longer than the usual deadline.
        absl::Duration deadline = body.size() > options.max_message_bytes
                                      ? std::max(options.call_deadline, absl::Seconds(10))
                                      : options.call_deadline;
        grpc::Status s = Call(*stubs[fuzzer.Below(stubs.size())], m.name, body, deadline);
        if (++codes[CodeName(s.error_code())] == 1) {
          sample[CodeName(s.error_code())] = absl::StrCat(m.name, ": ", s.error_message());
        }
        ++calls;
      }
      absl::MutexLock lock(&mu);
      report.calls += calls;
      for (const auto& [code, n] : codes) report.by_code[code] += n;
      for (const auto& [code, text] : sample) report.sample.emplace(code, text);
    });
  }
  for (std::thread& f : fuzzers) f.join();
  writer_thread.join();
  return report;
}

std::string Summary(const SweepReport& report) {
  std::vector<std::string> codes;
  for (const auto& [code, n] : report.by_code) codes.push_back(absl::StrCat(code, " ", n));
  std::string out = absl::StrCat("calls ", report.calls, ", by code: ", absl::StrJoin(codes, ", "),
                                 "; writer acked ", report.writer_acked, ", errors ",
                                 report.writer_errors.size());
  for (const auto& [code, text] : report.sample) {
    absl::StrAppend(&out, "\n  first ", code, ": ", text.substr(0, 200));
  }
  return out;
}

}  // namespace caseledger::testing
