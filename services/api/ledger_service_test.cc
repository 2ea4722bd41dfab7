// LedgerService's producer appends on gRPC's callback API (ledger_service.h):
// the real service behind the authorization interceptor, over mutual TLS,
// with the ledger's committer held at will (a commit listener that blocks)
// so that what is in flight can be counted.
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/sync_stream.h>
#include <grpcpp/resource_quota.h>
#include <grpcpp/support/server_interceptor.h>
#include <gtest/gtest.h>

#include <pthread.h>

#include <atomic>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "ledger/rocks_store.h"
#include "proto/ledger.grpc.pb.h"
#include "services/api/ledger_service.h"
#include "services/append/case_gate.h"
#include "services/authz/authz.h"
#include "services/authz/authz_directory.h"
#include "services/authz/authz_interceptor.h"
#include "tests/dev_certs.h"
#include "tests/subprocess.h"
#include "tests/test_util.h"

namespace caseledger {
namespace {

constexpr char kProducer[] = "producer-intake";  // producer "intake", program housing

v1::AppendRequest Opened(const std::string& case_id, const std::string& program = "housing") {
  v1::AppendRequest r;
  v1::Event* e = r.mutable_event();
  e->set_event_id("open-" + case_id);
  e->set_stream_id(case_id);
  e->add_subject_ids("client-" + case_id);
  e->set_producer("intake");
  e->mutable_occurred_at()->set_seconds(1767225000);
  auto* o = e->mutable_case_opened();
  o->set_program(program);
  o->set_jurisdiction("US-CA");
  o->set_record_class(v1::RECORD_CLASS_GENERAL);
  return r;
}

v1::AppendRequest Note(const std::string& id, const std::string& case_id,
                       std::optional<uint64_t> expected = std::nullopt) {
  v1::AppendRequest r;
  v1::Event* e = r.mutable_event();
  e->set_event_id(id);
  e->set_stream_id(case_id);
  e->add_subject_ids("client-" + case_id);
  e->set_producer("intake");
  e->mutable_occurred_at()->set_seconds(1767225600);
  auto* w = e->mutable_record_entry_written();
  w->set_entry_id("entry-" + id);
  w->set_data_category("housing");
  w->set_text("note " + id);
  if (expected.has_value()) r.set_expected_version(*expected);
  return r;
}

// The end of a stream whose request `index` opened a case in program
// "health", which kProducer is not registered for.
std::string RefusedHealth(int index) {
  return absl::StrCat("request ", index,
                      ": rule producer.own_program: producer \"intake\" is not registered for "
                      "program \"health\"");
}

// One unary Append sent with the callback stub.
struct AsyncAppend {
  v1::AppendRequest req;
  v1::AppendResponse resp;
  grpc::ClientContext ctx;
  grpc::Status status;
  absl::Notification done;
};

// One AppendBatch sent with the callback stub.
struct AsyncBatch {
  v1::AppendBatchRequest req;
  v1::AppendBatchResponse resp;
  grpc::ClientContext ctx;
  grpc::Status status;
  absl::Notification done;
};

// Counts the AppendStream requests the server has read (an interceptor
// sees each as it arrives, before the handler does).
class ReadCounter : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new Counting(info->method() == std::string("/caseledger.v1.LedgerService/AppendStream")
                            ? &reads_
                            : nullptr);
  }
  int reads() const { return reads_.load(); }

 private:
  class Counting : public grpc::experimental::Interceptor {
   public:
    explicit Counting(std::atomic<int>* reads) : reads_(reads) {}
    void Intercept(grpc::experimental::InterceptorBatchMethods* m) override {
      if (reads_ != nullptr &&
          m->QueryInterceptionHookPoint(
              grpc::experimental::InterceptionHookPoints::POST_RECV_MESSAGE) &&
          m->GetRecvMessage() != nullptr) {
        reads_->fetch_add(1);
      }
      m->Proceed();
    }

   private:
    std::atomic<int>* const reads_;
  };
  std::atomic<int> reads_{0};
};

// The read-ahead tests' max_stream_read_ahead: more than any of them sends.
constexpr size_t kReadAhead = 1024;

class LedgerServiceTest : public ::testing::Test {
 protected:
  // `max_threads`: the server's thread quota (0: gRPC's default).
  // `read_ahead`: max_stream_read_ahead (the read-ahead tests use the most
  // the in-flight limit allows).
  void Start(size_t max_stream_in_flight = 8192, int max_threads = 0, size_t append_workers = 0,
             size_t read_ahead = 1) {
    std::string dir = testing::NewTempDir("ledger_service");
    certs_ = dir + "/certs";
    testing::CommandResult made = testing::RunCommand(
        {"/usr/bin/env", "TEST_EXTRAS=1", "bash", "tools/make_dev_certs.sh", certs_,
         "producer/intake"});
    ASSERT_EQ(made.exit_code, 0) << made.err;
    auto db = testing::OpenTestLedger(dir + "/ledger");
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
    ledger_ = db_.ledger.get();
    gate_ = std::make_unique<CaseGate>(ledger_);
    directory_ = std::make_unique<ServerResourceDirectory>(gate_.get(), ledger_);
    auto config = ParseAuthzConfig("producer intake housing\n");
    ASSERT_TRUE(config.ok()) << config.status();
    authz_ = std::make_unique<Authorizer>(*std::move(config), directory_.get());
    // A commit listener that, once armed, holds the committer in the first
    // commit it hears of until released: appends after it stay queued.
    hold_listener_ = ledger_->AddCommitListener([this](const auto&) {
      if (!armed_.load()) return;
      if (!held_.HasBeenNotified()) held_.Notify();
      release_.WaitForNotification();
    });

    LedgerServiceOptions options;
    options.max_stream_in_flight = max_stream_in_flight;
    options.append_workers = append_workers;
    options.max_stream_read_ahead = read_ahead;
    options.admit_appends = [this] {
      admitted_.fetch_add(1);
      if (OnAppendWorker()) {
        on_workers_.fetch_add(1);
        if (hold_workers_.load()) workers_released_.WaitForNotification();
      } else {
        off_workers_.fetch_add(1);
      }
      return absl::OkStatus();
    };
    service_ = std::make_unique<LedgerServiceImpl>(ledger_, gate_.get(), db_.signer.get(), options);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", testing::DevServerCredentials(certs_), &port_);
    if (max_threads > 0) {
      grpc::ResourceQuota quota("ledger_service_test");
      quota.SetMaxThreads(max_threads);
      builder.SetResourceQuota(quota);
    }
    builder.RegisterService(service_.get());
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    auto factory =
        std::make_unique<AuthzInterceptorFactory>(authz_.get(), directory_.get(), gate_.get());
    factory_ = factory.get();
    creators.push_back(std::move(factory));
    auto counter = std::make_unique<ReadCounter>();
    counter_ = counter.get();
    creators.push_back(std::move(counter));
    builder.experimental().SetInterceptorCreators(std::move(creators));
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = v1::LedgerService::NewStub(
        testing::DevChannel("127.0.0.1:" + std::to_string(port_), certs_, kProducer));
  }

  // True on one of the service's append workers (named "append-worker").
  static bool OnAppendWorker() {
    char name[16] = {};
    pthread_getname_np(pthread_self(), name, sizeof(name));
    return absl::StartsWith(name, "append-worker");
  }
  void ReleaseWorkers() {
    hold_workers_.store(false);
    if (!workers_released_.HasBeenNotified()) workers_released_.Notify();
  }

  void TearDown() override {
    ReleaseWorkers();
    Release();
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    if (ledger_ != nullptr) ledger_->RemoveCommitListener(hold_listener_);
  }

  void SendBatch(AsyncBatch* call) {
    call->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    stub_->async()->AppendBatch(&call->ctx, &call->req, &call->resp, [call](grpc::Status s) {
      call->status = std::move(s);
      call->done.Notify();
    });
  }

  void Send(AsyncAppend* call) {
    call->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    stub_->async()->Append(&call->ctx, &call->req, &call->resp, [call](grpc::Status s) {
      call->status = std::move(s);
      call->done.Notify();
    });
  }

  // Opens case-1, then holds the commit of its first note (`first`, sent
  // here); returns once the committer is in that commit.
  void OpenAndHold(AsyncAppend* first) {
    v1::AppendResponse opened;
    ASSERT_TRUE(Append(Opened("case-1"), &opened).ok());
    armed_.store(true);
    first->req = Note("n-first", "case-1");
    Send(first);
    ASSERT_TRUE(held_.WaitForNotificationWithTimeout(absl::Seconds(10)));
  }
  void Release() {
    armed_.store(false);
    if (!release_.HasBeenNotified()) release_.Notify();
  }

  // Waits (up to 10 s) until admit_appends has been asked `n` times.
  bool AdmittedReaches(int n) {
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (admitted_.load() < n && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
    return admitted_.load() >= n;
  }

  // Opens case-1, then holds every admission on a worker (until
  // ReleaseWorkers); sets the log size and admission count reached.
  void OpenCaseAndHoldWorkers(uint64_t* before, int* base) {
    v1::AppendResponse opened;
    ASSERT_TRUE(Append(Opened("case-1"), &opened).ok());
    *before = ledger_->Size();
    *base = admitted_.load();
    hold_workers_.store(true);
  }

  // Waits until a stream's first request is held in admission (the
  // admissions counted from `base`) and `n` of its requests are read, then
  // lets the workers go.
  void ReleaseOnceReadAhead(int base, int n) {
    EXPECT_TRUE(AdmittedReaches(base + 1)) << "the stream's first request was not admitted";
    EXPECT_TRUE(ReadsReach(n)) << "read " << counter_->reads() << " of " << n
                               << " requests ahead";
    ReleaseWorkers();
  }

  // Reads a stream's answers to its end, each the version after the one
  // before (from `version`); returns the last version read.
  static uint64_t ReadInOrder(
      grpc::ClientReaderWriter<v1::AppendRequest, v1::AppendResponse>* stream, uint64_t version) {
    v1::AppendResponse resp;
    while (stream->Read(&resp)) EXPECT_EQ(resp.version(), ++version);
    return version;
  }

  // Waits (up to 10 s) until the server has read `n` AppendStream requests.
  bool ReadsReach(int n) {
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (counter_->reads() < n && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
    return counter_->reads() >= n;
  }

  grpc::Status Append(const v1::AppendRequest& req, v1::AppendResponse* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return stub_->Append(&ctx, req, resp);
  }
  // One more note to case-1 expecting `version` next: it is accepted only
  // if the gate's view of the case matches the log. Returns its answer.
  v1::AppendResponse AppendNoteAt(uint64_t version) {
    v1::AppendResponse next;
    grpc::Status s = Append(Note("after", "case-1", version), &next);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return next;
  }

  // "stream event_type" of each record from `from` on.
  std::vector<std::string> RecordsFrom(uint64_t from) {
    return testing::StreamsAndTypesFrom(*ledger_, from);
  }

  std::string certs_;
  testing::TestLedger db_;
  Ledger* ledger_ = nullptr;
  std::unique_ptr<CaseGate> gate_;
  std::unique_ptr<ServerResourceDirectory> directory_;
  std::unique_ptr<Authorizer> authz_;
  std::unique_ptr<LedgerServiceImpl> service_;
  AuthzInterceptorFactory* factory_ = nullptr;  // owned by server_
  ReadCounter* counter_ = nullptr;               // owned by server_
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::LedgerService::Stub> stub_;
  uint64_t hold_listener_ = 0;
  std::atomic<bool> armed_{false};
  absl::Notification held_;
  absl::Notification release_;
  std::atomic<int> admitted_{0};
  // Admissions on the append workers and elsewhere (gRPC's threads); while
  // hold_workers_ is set, those on a worker wait for workers_released_.
  std::atomic<int> on_workers_{0};
  std::atomic<int> off_workers_{0};
  std::atomic<bool> hold_workers_{false};
  absl::Notification workers_released_;
};

// A unary append waiting for its commit holds no server thread: with the
// server limited to 4 threads and the committer held, 48 appends are all
// admitted and queued at once, and once the commit goes through each gets
// its own seq and version, in one contiguous run.
TEST_F(LedgerServiceTest, UnaryAppendsWaitingForTheCommitHoldNoThread) {
  Start(/*max_stream_in_flight=*/8192, /*max_threads=*/4);
  AsyncAppend first;
  OpenAndHold(&first);
  const int base = admitted_.load();
  const uint64_t held = ledger_->Size();  // with n-first, whose commit is held

  constexpr int kCalls = 48;
  std::vector<std::unique_ptr<AsyncAppend>> calls;
  for (int i = 0; i < kCalls; ++i) {
    calls.push_back(std::make_unique<AsyncAppend>());
    calls.back()->req = Note(absl::StrCat("n-", i), "case-1");
    Send(calls.back().get());
  }
  const bool all_admitted = AdmittedReaches(base + kCalls);
  EXPECT_TRUE(all_admitted) << "only " << admitted_.load() - base
                            << " appends reached the gate while the commit was held";
  EXPECT_EQ(ledger_->Size(), held) << "the rest wait, queued";
  Release();

  ASSERT_TRUE(first.done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  ASSERT_TRUE(first.status.ok()) << first.status.error_message();
  std::set<uint64_t> seqs{first.resp.seq()};
  std::set<uint64_t> versions{first.resp.version()};
  for (auto& c : calls) {
    ASSERT_TRUE(c->done.WaitForNotificationWithTimeout(absl::Seconds(30)));
    ASSERT_TRUE(c->status.ok()) << c->status.error_message();
    EXPECT_FALSE(c->resp.duplicate());
    seqs.insert(c->resp.seq());
    versions.insert(c->resp.version());
    auto view = ledger_->Read(c->resp.seq());
    ASSERT_TRUE(view.ok()) << view.status();
    EXPECT_EQ(view->record.event_id, c->req.event().event_id());
  }
  ASSERT_EQ(seqs.size(), kCalls + 1u);
  EXPECT_EQ(*seqs.begin(), held - 1);
  EXPECT_EQ(*seqs.rbegin(), held - 1 + kCalls);
  EXPECT_EQ(*versions.begin(), 1u);  // after case_opened (version 0)
  EXPECT_EQ(*versions.rbegin(), kCalls + 1u);
  EXPECT_EQ(versions.size(), kCalls + 1u);
  EXPECT_EQ(ledger_->Size(), held + kCalls);
}

// A producer stream reads no further than max_stream_in_flight requests
// ahead of their outcomes; once the commit goes through, every response
// arrives in request order.
TEST_F(LedgerServiceTest, StreamStopsReadingAtTheInFlightLimit) {
  Start(/*max_stream_in_flight=*/4);
  AsyncAppend first;
  OpenAndHold(&first);
  const int base = admitted_.load();

  grpc::ClientContext ctx;
  auto stream = stub_->AppendStream(&ctx);
  std::thread writer([&] {
    for (int i = 0; i < 30; ++i) {
      if (!stream->Write(Note(absl::StrCat("s-", i), "case-1"))) return;
    }
    stream->WritesDone();
  });
  ASSERT_TRUE(AdmittedReaches(base + 4));
  absl::SleepFor(absl::Milliseconds(300));  // time to read more, were it allowed
  EXPECT_EQ(admitted_.load(), base + 4) << "the stream was read past its in-flight limit";
  Release();

  v1::AppendResponse resp;
  uint64_t version = 1;  // case_opened (0), then n-first (1)
  int n = 0;
  while (stream->Read(&resp)) {
    EXPECT_EQ(resp.version(), ++version);
    ++n;
  }
  writer.join();
  grpc::Status s = stream->Finish();
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(n, 30);
  ASSERT_TRUE(first.done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_TRUE(first.status.ok());
}

// A request the interceptor refuses mid-stream (a program the producer is
// not registered for) ends the stream after the responses before it, with
// the rule's message naming the request; the refusal is recorded once, and
// nothing the client sent after it is stored.
TEST_F(LedgerServiceTest, StreamRefusedMidStreamByAuthorizationStopsThere) {
  Start();
  const uint64_t before = ledger_->Size();
  grpc::ClientContext ctx;
  auto stream = stub_->AppendStream(&ctx);
  ASSERT_TRUE(stream->Write(Opened("case-1")));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(stream->Write(Note(absl::StrCat("a-", i), "case-1")));
  ASSERT_TRUE(stream->Write(Opened("case-2", "health")));
  for (int i = 0; i < 5; ++i) stream->Write(Note(absl::StrCat("b-", i), "case-1"));
  stream->WritesDone();
  v1::AppendResponse resp;
  uint64_t n = 0;
  while (stream->Read(&resp)) EXPECT_EQ(resp.version(), n++);
  EXPECT_EQ(n, 6u);
  grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(s.error_message(), RefusedHealth(6));
  std::vector<std::string> want(6, "case-1 record_entry_written");
  want[0] = "case-1 case_opened";
  want.push_back("@access access_refused");
  EXPECT_EQ(RecordsFrom(before), want);
  EXPECT_EQ(factory_->unheeded_refusals(), 0u);
}

// A request the gate refuses mid-stream (a stale expected_version) ends the
// stream with the gate's status after the responses before it; the requests
// the client sent after it are not read, so none of them is stored.
TEST_F(LedgerServiceTest, StreamRefusedMidStreamByTheGateStoresNothingAfter) {
  Start();
  v1::AppendResponse opened;
  ASSERT_TRUE(Append(Opened("case-1"), &opened).ok());
  const uint64_t before = ledger_->Size();
  grpc::ClientContext ctx;
  auto stream = stub_->AppendStream(&ctx);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(stream->Write(Note(absl::StrCat("a-", i), "case-1")));
  ASSERT_TRUE(stream->Write(Note("stale", "case-1", /*expected=*/1)));
  for (int i = 0; i < 50; ++i) stream->Write(Note(absl::StrCat("b-", i), "case-1"));
  stream->WritesDone();
  v1::AppendResponse resp;
  uint64_t version = 0;  // case_opened
  while (stream->Read(&resp)) EXPECT_EQ(resp.version(), ++version);
  EXPECT_EQ(version, 5u);
  grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(s.error_message(),
            "stream \"case-1\": expected_version 1, but the stream's next version is 6");
  EXPECT_EQ(RecordsFrom(before), std::vector<std::string>(5, "case-1 record_entry_written"));
}

// A stream the client cancels while its appends wait for the commit: every
// append it queued lands whole (record and gate state agree), the call ends,
// and the case takes the next append at the version the log says.
TEST_F(LedgerServiceTest, CancelledStreamLeavesNothingHalfDone) {
  Start();
  AsyncAppend first;
  OpenAndHold(&first);
  const int base = admitted_.load();
  const uint64_t before = ledger_->Size();  // n-first is in, held

  auto ctx = std::make_unique<grpc::ClientContext>();
  auto stream = stub_->AppendStream(ctx.get());
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(stream->Write(Note(absl::StrCat("c-", i), "case-1")));
  ASSERT_TRUE(AdmittedReaches(base + 20));
  ctx->TryCancel();
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  Release();
  ASSERT_TRUE(first.done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  ASSERT_TRUE(first.status.ok());

  // The queued appends land whole; each once.
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (ledger_->Size() < before + 20 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  std::vector<std::string> want(20, "case-1 record_entry_written");
  EXPECT_EQ(RecordsFrom(before), want);
  // The gate's view of the case matches the log: version 22 is next.
  v1::AppendResponse next = AppendNoteAt(22);
  EXPECT_EQ(next.version(), 22u);
  EXPECT_EQ(next.seq(), before + 20);
}

// Many requests of one stream in flight at once, gated on the workers while
// earlier ones wait for the commit: with the commit held, 30 requests are
// queued, the 31st is refused by the gate (a stale expected_version) and 30
// more follow. The 30 before it are answered in request order (seq and
// version) once the commit goes through, the call ends with the gate's
// status, none of the requests after the refusal is stored or acknowledged,
// and the gate's state matches the log. Pins ordering and the stop at a
// refusal, which the hand-off to the workers could break.
TEST_F(LedgerServiceTest, StreamRefusedInTheMiddleOfManyInFlightAnswersInOrder) {
  Start();
  AsyncAppend first;
  OpenAndHold(&first);
  const uint64_t before = ledger_->Size();  // n-first is in, held

  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto stream = stub_->AppendStream(&ctx);
  std::thread writer([&] {
    for (int i = 0; i < 30; ++i) {
      if (!stream->Write(Note(absl::StrCat("p-", i), "case-1"))) return;
    }
    if (!stream->Write(Note("stale", "case-1", /*expected=*/1))) return;
    for (int i = 0; i < 30; ++i) {
      if (!stream->Write(Note(absl::StrCat("q-", i), "case-1"))) return;
    }
    stream->WritesDone();
  });
  absl::SleepFor(absl::Milliseconds(300));  // time to read ahead while the commit is held
  Release();
  v1::AppendResponse resp;
  uint64_t version = 1;  // case_opened (0), then n-first (1)
  uint64_t seq = before;
  while (stream->Read(&resp)) {
    EXPECT_EQ(resp.version(), ++version);
    EXPECT_EQ(resp.seq(), seq++);
  }
  writer.join();
  EXPECT_EQ(version, 31u);
  grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(s.error_message(),
            "stream \"case-1\": expected_version 1, but the stream's next version is 32");
  ASSERT_TRUE(first.done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(RecordsFrom(before), std::vector<std::string>(30, "case-1 record_entry_written"));
  // The gate's view matches the log: version 32 is next.
  v1::AppendResponse next = AppendNoteAt(32);
  EXPECT_EQ(next.seq(), before + 30);
}

// A request that does not parse ends the stream with INVALID_ARGUMENT naming
// its index (gRPC reports it as a failed read, like a half-close: the call
// used to end OK); the requests before it are answered and stored, nothing
// after it is. Fails without the unread marker (ledger_service.cc).
TEST_F(LedgerServiceTest, StreamRequestThatDoesNotParseEndsItInvalid) {
  Start();
  const uint64_t before = ledger_->Size();
  auto channel = testing::DevChannel("127.0.0.1:" + std::to_string(port_), certs_, kProducer);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  grpc::internal::RpcMethod method("/caseledger.v1.LedgerService/AppendStream",
                                   grpc::internal::RpcMethod::BIDI_STREAMING);
  std::unique_ptr<grpc::ClientReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>> stream(
      grpc::internal::ClientReaderWriterFactory<grpc::ByteBuffer, grpc::ByteBuffer>::Create(
          channel.get(), method, &ctx));
  auto raw = [](const std::string& bytes) {
    grpc::Slice slice(bytes.data(), bytes.size());
    return grpc::ByteBuffer(&slice, 1);
  };
  ASSERT_TRUE(stream->Write(raw(Opened("case-1").SerializeAsString())));
  ASSERT_TRUE(stream->Write(raw(Note("n-0", "case-1").SerializeAsString())));
  // Field 1 (event) says 5 bytes follow; 2 do.
  ASSERT_TRUE(stream->Write(raw(std::string("\x0a\x05zz", 4))));
  stream->Write(raw(Note("n-1", "case-1").SerializeAsString()));
  stream->WritesDone();
  grpc::ByteBuffer buffer;
  int n = 0;
  while (stream->Read(&buffer)) ++n;
  EXPECT_EQ(n, 2);
  grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(),
            "request 2: not a valid protobuf message of type caseledger.v1.AppendRequest");
  EXPECT_EQ(RecordsFrom(before),
            (std::vector<std::string>{"case-1 case_opened", "case-1 record_entry_written"}));
}

// Append, AppendBatch and AppendStream are decoded, admitted and gated on
// the service's append workers, never on gRPC's callback threads: with
// every worker held inside admission, 16 batches, 8 streams and a unary
// Append all wait there, and each lands once the workers go on. Fails
// without the hand-offs (admission then runs on gRPC's threads; before this
// change, the unary Append's did).
TEST_F(LedgerServiceTest, AppendsAreGatedOnTheWorkersNotCallbackThreads) {
  Start();
  v1::AppendResponse opened;
  ASSERT_TRUE(Append(Opened("case-1"), &opened).ok());
  ASSERT_TRUE(Append(Opened("case-2"), &opened).ok());
  const uint64_t before = ledger_->Size();
  const int on_before = on_workers_.load();
  const int off_before = off_workers_.load();
  hold_workers_.store(true);

  constexpr int kBatches = 16;
  constexpr int kStreams = 8;
  std::vector<std::unique_ptr<AsyncBatch>> batches;
  for (int i = 0; i < kBatches; ++i) {
    batches.push_back(std::make_unique<AsyncBatch>());
    *batches.back()->req.add_requests() = Note(absl::StrCat("b-", i), "case-1");
    *batches.back()->req.add_requests() = Note(absl::StrCat("b2-", i), "case-1");
    SendBatch(batches.back().get());
  }
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReaderWriter<v1::AppendRequest, v1::AppendResponse>>>
      streams;
  for (int i = 0; i < kStreams; ++i) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    contexts.back()->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    streams.push_back(stub_->AppendStream(contexts.back().get()));
    ASSERT_TRUE(streams.back()->Write(Note(absl::StrCat("s-", i), "case-2")));
  }
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (on_workers_.load() == on_before && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_GT(on_workers_.load(), on_before) << "no batch or stream request reached a worker";
  absl::SleepFor(absl::Milliseconds(200));  // time for the rest to queue behind

  // Every worker may be held now; a unary Append waits for one too.
  AsyncAppend other;
  other.req = Note("other", "case-2");
  Send(&other);
  absl::SleepFor(absl::Milliseconds(300));  // time to be gated, were it off the workers
  EXPECT_EQ(off_workers_.load(), off_before) << "the unary Append was admitted off the workers";
  EXPECT_FALSE(other.done.HasBeenNotified());
  ReleaseWorkers();
  ASSERT_TRUE(other.done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_TRUE(other.status.ok()) << other.status.error_message();
  for (auto& b : batches) {
    ASSERT_TRUE(b->done.WaitForNotificationWithTimeout(absl::Seconds(30)));
    EXPECT_TRUE(b->status.ok()) << b->status.error_message();
    EXPECT_EQ(b->resp.results_size(), 2);
  }
  for (auto& stream : streams) {
    v1::AppendResponse resp;
    EXPECT_TRUE(stream->Read(&resp));
    stream->WritesDone();
    EXPECT_FALSE(stream->Read(&resp));
    grpc::Status s = stream->Finish();
    EXPECT_TRUE(s.ok()) << s.error_message();
  }
  EXPECT_EQ(ledger_->Size(), before + 2 * kBatches + kStreams + 1);
  EXPECT_EQ(on_workers_.load(), on_before + kBatches + kStreams + 1);
  EXPECT_EQ(off_workers_.load(), off_before) << "an append was admitted off the workers";
}

// A stream the client cancels while its request waits for a worker (both
// workers are held in admission of two batches): the request is dropped
// unadmitted, unstored and unacknowledged, the batches land, and the case
// takes the next append at the version the log says. Fails if a request
// handed to a worker were gated after cancellation.
TEST_F(LedgerServiceTest, CancelledStreamDropsTheRequestNotYetGated) {
  Start(/*max_stream_in_flight=*/8192, /*max_threads=*/0, /*append_workers=*/2);
  uint64_t before = 0;
  int base = 0;
  OpenCaseAndHoldWorkers(&before, &base);

  AsyncBatch batches[2];
  for (int i = 0; i < 2; ++i) {
    *batches[i].req.add_requests() = Note(absl::StrCat("b-", i), "case-1");
    SendBatch(&batches[i]);
  }
  ASSERT_TRUE(AdmittedReaches(base + 2));  // both workers held

  auto ctx = std::make_unique<grpc::ClientContext>();
  auto stream = stub_->AppendStream(ctx.get());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(stream->Write(Note(absl::StrCat("c-", i), "case-1")));
  absl::SleepFor(absl::Milliseconds(300));  // time for c-0 to be read and handed over
  ctx->TryCancel();
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  absl::SleepFor(absl::Milliseconds(100));  // time for the server to see it
  ReleaseWorkers();

  for (AsyncBatch& b : batches) {
    ASSERT_TRUE(b.done.WaitForNotificationWithTimeout(absl::Seconds(30)));
    EXPECT_TRUE(b.status.ok()) << b.status.error_message();
  }
  absl::SleepFor(absl::Milliseconds(300));  // time for c-0 to land, were it gated
  EXPECT_EQ(RecordsFrom(before), std::vector<std::string>(2, "case-1 record_entry_written"));
  EXPECT_EQ(admitted_.load(), base + 2) << "a request was gated after its stream was cancelled";
  v1::AppendResponse next = AppendNoteAt(3);
  EXPECT_EQ(next.seq(), before + 2);
}

// A stream is read ahead of the gate, up to its in-flight limit: with the
// gating of its first request held in admission, the server reads 8 of the
// 30 requests sent (max_stream_in_flight) and no more; once released, every
// request is answered in request order. Fails on the old code, which read
// the next request only after the one before was queued with the gate.
TEST_F(LedgerServiceTest, StreamReadsAheadOfTheGateUpToItsInFlightLimit) {
  Start(/*max_stream_in_flight=*/8, /*max_threads=*/0, /*append_workers=*/0, kReadAhead);
  uint64_t before = 0;
  int base = 0;
  OpenCaseAndHoldWorkers(&before, &base);

  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto stream = stub_->AppendStream(&ctx);
  std::thread writer([&] {
    for (int i = 0; i < 30; ++i) {
      if (!stream->Write(Note(absl::StrCat("r-", i), "case-1"))) return;
    }
    stream->WritesDone();
  });
  ASSERT_TRUE(AdmittedReaches(base + 1));  // request 0 is held in admission
  const bool read_ahead = ReadsReach(8);
  EXPECT_TRUE(read_ahead) << "read " << counter_->reads()
                          << " requests while the first was being gated, want 8";
  absl::SleepFor(absl::Milliseconds(300));  // time to read more, were it allowed
  EXPECT_EQ(counter_->reads(), 8) << "the stream was read past its in-flight limit";
  EXPECT_EQ(admitted_.load(), base + 1);
  ReleaseWorkers();

  v1::AppendResponse resp;
  uint64_t version = 0;  // case_opened
  uint64_t seq = before;
  while (stream->Read(&resp)) {
    EXPECT_EQ(resp.version(), ++version);
    EXPECT_EQ(resp.seq(), seq++);
  }
  writer.join();
  grpc::Status s = stream->Finish();
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(version, 30u);
  EXPECT_EQ(RecordsFrom(before), std::vector<std::string>(30, "case-1 record_entry_written"));
}

// Requests read ahead are authorized against the case state their
// predecessors leave: a stream opens a case and appends to it, all read
// while the first request's gating is held. Deciding each request as it is
// read (as the interceptor did) would refuse the notes ("case-7 is not
// open"); the stream's gating task decides them once the opening is queued.
TEST_F(LedgerServiceTest, StreamReadAheadIsAuthorizedAgainstItsPredecessors) {
  Start(/*max_stream_in_flight=*/8192, /*max_threads=*/0, /*append_workers=*/0, kReadAhead);
  const uint64_t before = ledger_->Size();
  const int base = admitted_.load();
  hold_workers_.store(true);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto stream = stub_->AppendStream(&ctx);
  ASSERT_TRUE(stream->Write(Opened("case-7")));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(stream->Write(Note(absl::StrCat("o-", i), "case-7")));
  stream->WritesDone();
  ReleaseOnceReadAhead(base, 6);
  v1::AppendResponse resp;
  uint64_t n = 0;
  while (stream->Read(&resp)) EXPECT_EQ(resp.version(), n++);
  grpc::Status s = stream->Finish();
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(n, 6u);
  std::vector<std::string> want(6, "case-7 record_entry_written");
  want[0] = "case-7 case_opened";
  EXPECT_EQ(RecordsFrom(before), want);
}

// A refusal by the gate in the middle of a window read ahead: 10 requests,
// a stale expected_version, 10 more, all read while the first is held in
// admission. The 10 are answered in order, the call ends ABORTED, and the
// 10 after the refusal are neither admitted nor stored.
TEST_F(LedgerServiceTest, StreamRefusalInsideAReadAheadWindowDropsTheRest) {
  Start(/*max_stream_in_flight=*/8192, /*max_threads=*/0, /*append_workers=*/0, kReadAhead);
  uint64_t before = 0;
  int base = 0;
  OpenCaseAndHoldWorkers(&before, &base);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto stream = stub_->AppendStream(&ctx);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(stream->Write(Note(absl::StrCat("a-", i), "case-1")));
  ASSERT_TRUE(stream->Write(Note("stale", "case-1", /*expected=*/1)));
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(stream->Write(Note(absl::StrCat("b-", i), "case-1")));
  stream->WritesDone();
  ReleaseOnceReadAhead(base, 21);
  EXPECT_EQ(ReadInOrder(stream.get(), /*version=*/0), 10u);  // after case_opened (0)
  grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(s.error_message(),
            "stream \"case-1\": expected_version 1, but the stream's next version is 11");
  EXPECT_EQ(admitted_.load(), base + 11) << "a request after the refusal was admitted";
  EXPECT_EQ(RecordsFrom(before), std::vector<std::string>(10, "case-1 record_entry_written"));
}

// A refusal by authorization inside a window read ahead: the requests after
// it are never decided, so a second request the rules would refuse is not
// recorded as refused; the refusal is recorded once, as the only record
// after the 3 notes before it.
TEST_F(LedgerServiceTest, StreamAuthorizationRefusalInsideAReadAheadWindowDecidesNothingAfter) {
  Start(/*max_stream_in_flight=*/8192, /*max_threads=*/0, /*append_workers=*/0, kReadAhead);
  uint64_t before = 0;
  int base = 0;
  OpenCaseAndHoldWorkers(&before, &base);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto stream = stub_->AppendStream(&ctx);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(stream->Write(Note(absl::StrCat("a-", i), "case-1")));
  ASSERT_TRUE(stream->Write(Opened("case-2", "health")));
  ASSERT_TRUE(stream->Write(Opened("case-3", "health")));
  ASSERT_TRUE(stream->Write(Note("after", "case-1")));
  stream->WritesDone();
  ReleaseOnceReadAhead(base, 6);
  EXPECT_EQ(ReadInOrder(stream.get(), /*version=*/0), 3u);
  grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(s.error_message(), RefusedHealth(3));
  std::vector<std::string> want(3, "case-1 record_entry_written");
  want.push_back("@access access_refused");
  EXPECT_EQ(RecordsFrom(before), want);
  EXPECT_EQ(admitted_.load(), base + 3);
  EXPECT_EQ(factory_->unheeded_refusals(), 0u);
}

// Cancelled in the middle of a window read ahead: the request being gated
// when the client cancels lands; the 9 read after it are dropped, neither
// admitted nor stored, and the case takes the next append at the version
// the log says.
TEST_F(LedgerServiceTest, CancelledStreamDropsTheReadAheadWindow) {
  Start(/*max_stream_in_flight=*/8192, /*max_threads=*/0, /*append_workers=*/0, kReadAhead);
  uint64_t before = 0;
  int base = 0;
  OpenCaseAndHoldWorkers(&before, &base);
  auto ctx = std::make_unique<grpc::ClientContext>();
  auto stream = stub_->AppendStream(ctx.get());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(stream->Write(Note(absl::StrCat("c-", i), "case-1")));
  ASSERT_TRUE(AdmittedReaches(base + 1));
  ASSERT_TRUE(ReadsReach(10)) << "read " << counter_->reads() << " of 10 requests ahead";
  ctx->TryCancel();
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  absl::SleepFor(absl::Milliseconds(100));  // time for the server to see it
  ReleaseWorkers();
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (ledger_->Size() < before + 1 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  absl::SleepFor(absl::Milliseconds(300));  // time for the rest to land, were they gated
  EXPECT_EQ(RecordsFrom(before), std::vector<std::string>{"case-1 record_entry_written"});
  EXPECT_EQ(admitted_.load(), base + 1) << "a request read ahead was gated after cancellation";
  v1::AppendResponse next = AppendNoteAt(2);
  EXPECT_EQ(next.seq(), before + 1);
}

// max_stream_read_ahead bounds the read-ahead: at the default 1 the next
// request is read only once the gating task has queued the ones before, so
// with the first held in admission the server has read 1 of 10; released,
// all 10 are answered in order. Fails if the bound were ignored.
TEST_F(LedgerServiceTest, StreamReadAheadIsBounded) {
  Start();  // max_stream_read_ahead 1
  uint64_t before = 0;
  int base = 0;
  OpenCaseAndHoldWorkers(&before, &base);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto stream = stub_->AppendStream(&ctx);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(stream->Write(Note(absl::StrCat("d-", i), "case-1")));
  stream->WritesDone();
  ASSERT_TRUE(AdmittedReaches(base + 1));
  absl::SleepFor(absl::Milliseconds(300));  // time to read more, were it allowed
  EXPECT_EQ(counter_->reads(), 1) << "read ahead past max_stream_read_ahead";
  ReleaseWorkers();
  EXPECT_EQ(ReadInOrder(stream.get(), /*version=*/0), 10u);  // after case_opened (0)
  grpc::Status s = stream->Finish();
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(RecordsFrom(before), std::vector<std::string>(10, "case-1 record_entry_written"));
}

}  // namespace
}  // namespace caseledger
