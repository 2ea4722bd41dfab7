#include "services/api/authz_interceptor.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <grpcpp/support/byte_buffer.h>

#include <cstdio>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/api/authz_verdict.h"
#include "services/api/grpc_status.h"

namespace caseledger {
namespace {

using grpc::experimental::InterceptionHookPoints;

// The first of `names` that is a top-level string field of `m`.
std::string StringField(const google::protobuf::Message& m,
                        std::initializer_list<const char*> names) {
  for (const char* name : names) {
    const google::protobuf::FieldDescriptor* f = m.GetDescriptor()->FindFieldByName(name);
    if (f != nullptr && !f->is_repeated() &&
        f->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_STRING) {
      return m.GetReflection()->GetString(m, f);
    }
  }
  return "";
}

// The top-level uint64 field `name` of `m`, when it has one.
std::optional<uint64_t> Uint64Field(const google::protobuf::Message& m, const char* name) {
  const google::protobuf::FieldDescriptor* f = m.GetDescriptor()->FindFieldByName(name);
  if (f == nullptr || f->is_repeated() ||
      f->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_UINT64) {
    return std::nullopt;
  }
  return m.GetReflection()->GetUInt64(m, f);
}

// True when `method` belongs to a caseledger service whose generated
// protobuf types are linked in, so that its messages are protobuf Messages.
bool HasProtoRequest(absl::string_view method) {
  if (!absl::StartsWith(method, "/caseledger.")) return false;
  size_t slash = method.rfind('/');
  if (slash == 0 || slash == absl::string_view::npos) return false;
  const auto* service = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
      std::string(method.substr(1, slash - 1)));
  return service != nullptr &&
         service->FindMethodByName(std::string(method.substr(slash + 1))) != nullptr;
}

// gRPC answers a request body that does not parse with INTERNAL and no
// message, before any handler runs; this says what it is instead.
class ParseFailureNamer {
 public:
  explicit ParseFailureNamer(grpc::experimental::ServerRpcInfo* info)
      : single_request_(info->type() == grpc::experimental::ServerRpcInfo::Type::UNARY ||
                        info->type() == grpc::experimental::ServerRpcInfo::Type::SERVER_STREAMING),
        method_(info->method()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* m) {
    // For a single-request method the request is parsed before this hook;
    // no message here means it did not parse.
    if (single_request_ &&
        m->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE) &&
        m->GetRecvMessage() == nullptr) {
      failed_ = true;
    }
    if (failed_ && m->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS) &&
        m->GetSendStatus().error_code() == grpc::StatusCode::INTERNAL) {
      m->ModifySendStatus(grpc::Status(
          grpc::StatusCode::INVALID_ARGUMENT,
          absl::StrCat("request: the body of this ", method_,
                       " call is not a valid protobuf message of its request type")));
    }
  }

 private:
  const bool single_request_;
  const std::string method_;
  bool failed_ = false;
};

class AuthzInterceptor : public grpc::experimental::Interceptor {
 public:
  // `unheeded` counts refused calls whose handler did not answer with the
  // refusal; borrowed, must outlive the interceptor.
  AuthzInterceptor(AccessGuard* guard, grpc::experimental::ServerRpcInfo* info,
                   std::atomic<uint64_t>* unheeded)
      : guard_(guard),
        info_(info),
        method_(info->method()),
        proto_(HasProtoRequest(method_)),
        unheeded_(unheeded),
        verdict_(info->server_context()),
        parse_(info) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* m) override {
    parse_.Intercept(m);
    if (m->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      CheckCaller();
    }
    if (m->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE)) {
      void* request = m->GetRecvMessage();
      if (request != nullptr) handler_runs_ = true;
      if (!checked_ && refusal_.ok() && request != nullptr) {
        // A generated request type derives from Message alone, so the
        // pointer the server passed as void* is also the Message's.
        Check(ResourceOf(*static_cast<google::protobuf::Message*>(request)));
      }
      // A backstop only: a guarded handler returns AuthzVerdict first and
      // never reads the request of a refused call.
      if (!refusal_.ok() && request != nullptr && proto_) {
        static_cast<google::protobuf::Message*>(request)->Clear();
      }
    }
    const bool sending = m->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_MESSAGE);
    const bool finishing = m->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS);
    if ((sending || finishing) && !checked_ && refusal_.ok()) {
      // No request message arrived (a client stream that sent nothing): the
      // check without one is the strictest.
      Check(Resource());
    }
    if (sending && !refusal_.ok()) {
      grpc::ByteBuffer* out = m->GetSerializedSendMessage();
      if (out != nullptr) {
        grpc::Slice empty;
        *out = grpc::ByteBuffer(&empty, 1);
      }
    }
    if (finishing && !refusal_.ok()) {
      if (proto_ && handler_runs_) NoteUnheeded(m->GetSendStatus());
      m->ModifySendStatus(ToGrpcStatus(refusal_));
    }
    m->Proceed();
  }

 private:
  // Refuses at once when the caller cannot be named or their role may not
  // use the method at all; otherwise waits for the request when it names
  // the resource.
  void CheckCaller() {
    absl::StatusOr<Principal> who = guard_->Identify(info_->server_context());
    if (!who.ok()) {
      Decide(guard_->Admit(info_->server_context(), method_, Resource()).status());
      return;
    }
    principal_ = *who;
    const MethodPolicy* row = FindPolicy(method_);
    if (row == nullptr || row->rules[static_cast<int>(who->role)] == Rule::kDeny || !proto_) {
      Check(Resource());
    }
  }

  Resource ResourceOf(const google::protobuf::Message& request) const {
    Resource r;
    if (!proto_) return r;
    r.client_id = StringField(request, {"client_id", "subject_id"});
    r.case_id = StringField(request, {"case_id", "stream_id"});
    // One record named by its seq (AccessService.ReadRecord).
    r.record_seq = Uint64Field(request, "seq");
    return r;
  }

  void Check(const Resource& resource) {
    if (!principal_.has_value()) {
      Decide(absl::UnauthenticatedError("the caller could not be named"));
      return;
    }
    Decide(guard_->AdmitAs(*principal_, method_, resource).status());
  }

  // The verdict, here and for the handler (AuthzVerdict).
  void Decide(const absl::Status& verdict) {
    checked_ = true;
    refusal_ = verdict;
    verdict_.Decide(verdict);
  }

  // A handler of a caseledger service that answers a refused call with
  // anything but the refusal ran without returning AuthzVerdict first: a bug
  // in that handler, which the replaced answer hides from the caller.
  void NoteUnheeded(const grpc::Status& answered) {
    const grpc::Status refusal = ToGrpcStatus(refusal_);
    if (answered.error_code() == refusal.error_code() &&
        answered.error_message() == refusal.error_message()) {
      return;
    }
    unheeded_->fetch_add(1, std::memory_order_relaxed);
    std::fprintf(stderr,
                 "caseledger: BUG: the handler of %s ran for a refused call (it answered %d "
                 "\"%s\"); it must return AuthzVerdict(*ctx) first\n",
                 method_.c_str(), static_cast<int>(answered.error_code()),
                 answered.error_message().c_str());
  }

  AccessGuard* const guard_;
  grpc::experimental::ServerRpcInfo* const info_;
  const std::string method_;
  const bool proto_;
  std::atomic<uint64_t>* const unheeded_;
  std::optional<Principal> principal_;
  bool checked_ = false;
  absl::Status refusal_;
  // A request arrived, so the handler is called.
  bool handler_runs_ = false;
  internal::VerdictSlot verdict_;
  ParseFailureNamer parse_;
};

// For methods whose handlers call the guard themselves.
class PassThrough : public grpc::experimental::Interceptor {
 public:
  explicit PassThrough(grpc::experimental::ServerRpcInfo* info) : parse_(info) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* m) override {
    parse_.Intercept(m);
    m->Proceed();
  }

 private:
  ParseFailureNamer parse_;
};

}  // namespace

AuthzInterceptorFactory::AuthzInterceptorFactory(AccessGuard* guard,
                                                 std::set<std::string> checked_in_handler)
    : guard_(guard), checked_in_handler_(std::move(checked_in_handler)) {}

grpc::experimental::Interceptor* AuthzInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  if (checked_in_handler_.count(info->method()) > 0) return new PassThrough(info);
  return new AuthzInterceptor(guard_, info, &unheeded_);
}

std::set<std::string> AuthzInterceptorFactory::MethodsOf(
    const std::vector<std::string>& services) {
  std::set<std::string> out;
  for (const std::string& name : services) {
    const auto* service = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(name);
    if (service == nullptr) continue;
    for (int i = 0; i < service->method_count(); ++i) {
      out.insert(absl::StrCat("/", name, "/", service->method(i)->name()));
    }
  }
  return out;
}

}  // namespace caseledger
