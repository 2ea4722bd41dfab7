// ledger_bench: a load generator for LedgerService appends.
//
//   ledger_bench --server=127.0.0.1:7070 --mode=stream --clients=8 --duration=60s
//
// Each client is a thread that appends valid caseledger.v1.Event messages
// (record_entry_written, --payload_bytes of text) by unary Append, by
// AppendBatch, or pipelined over one AppendStream. It prints progress every
// 5 s on stderr and a final report (events, errors by status code,
// throughput, latency percentiles); --json adds the report as one JSON line on
// stdout. With --server_pid it also samples the server's VmRSS every second
// and its CPU per thread over the measured window.
//
// A partitioned server (--pg_partitions > 1, ledger/CLUSTER.md "Serving
// P > 1") is followed as a client follows it: each call goes to the node
// last known to own the case's partition (at first --server), and a redirect
// (UNAVAILABLE with the caseledger-owner-address trailer) sends the same
// request to the node it names, which is remembered for that partition.
// Batches stay within one partition there (each batch takes the client's
// cases of one partition, partitions in turn). Redirected addresses must be
// loopback too. Stream mode is refused with P > 1 (a stream goes to one node).
//
// The run is bounded: clients stop sending at --warmup + --duration, and every
// call carries a deadline 10 s after that. Only loopback servers are accepted:
// a ledger keeps every record forever, so this tool must not be pointed at a
// real one by accident.
#include <dirent.h>
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "ledger/partition.h"
#include "proto/ledger.grpc.pb.h"
#include "services/cluster/cluster_client.h"
#include "tools/channel.h"

ABSL_FLAG(std::string, server, "127.0.0.1:7070",
          "host:port of the ledger; loopback only (127.x.x.x, localhost or [::1]).");
ABSL_FLAG(std::string, ca, "",
          "CA certificate (PEM): speak mutual TLS with --cert/--key_file, a producer certificate "
          "caseledger://producer/ledger_bench registered for program ledger_bench.");
ABSL_FLAG(std::string, cert, "", "Client certificate (PEM), with --ca.");
ABSL_FLAG(std::string, key_file, "", "Client key (PEM), with --ca.");
ABSL_FLAG(std::string, tls_server_name, "localhost", "Name the server certificate must have.");
ABSL_FLAG(std::string, mode, "stream",
          "unary (one Append per event), batch (AppendBatch of --batch_size) or stream "
          "(AppendStream, up to --window requests in flight per client).");
ABSL_FLAG(int32_t, clients, 8, "Concurrent clients, one thread each (stream: two).");
ABSL_FLAG(std::string, channel, "per_client",
          "per_client: each client has its own channel and TCP connection; shared: one "
          "channel (one connection) for all clients.");
ABSL_FLAG(int32_t, payload_bytes, 512, "Length of each event's record_entry_written.text.");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(60), "Measured time, after --warmup.");
ABSL_FLAG(absl::Duration, warmup, absl::Seconds(2),
          "Load before measuring; its events and latencies are not in the report.");
ABSL_FLAG(int32_t, batch_size, 100, "Events per AppendBatch (batch mode).");
ABSL_FLAG(int32_t, window, 1000, "Most unanswered requests per stream (stream mode).");
ABSL_FLAG(double, rate, 0,
          "Offered load in events/s over all clients; 0 = as fast as possible (closed loop). "
          "When set, sends are paced to a schedule and latency counts from each event's "
          "scheduled send time, so a stalled server is not hidden (no coordinated omission).");
ABSL_FLAG(int32_t, streams, 1000, "Distinct case ids (stream_id) the events go to; each is opened with a "
          "case_opened event before the run. Each client writes round robin to its own share "
          "(--streams / --clients of them), so no two clients race in one case.");
ABSL_FLAG(bool, json, false, "Also print the report as one JSON line on stdout.");
ABSL_FLAG(int32_t, server_pid, 0,
          "Server process id: sample its VmRSS every second (report the max) and its CPU "
          "per thread over the measured window. 0 = off.");
ABSL_FLAG(std::string, run_id, "",
          "Prefix of every event id and case id; default a random 8 hex digits, so that "
          "reruns against the same ledger do not collide.");

namespace caseledger {
namespace {

namespace v1 = ::caseledger::v1;

constexpr absl::Duration kProgressEvery = absl::Seconds(5);
// How long after the end of the run a call may still take.
constexpr absl::Duration kDrainDeadline = absl::Seconds(10);
constexpr size_t kTextPoolBytes = 4 << 20;
// Most redirects one call follows (a takeover can move a partition twice).
constexpr int kMaxRedirects = 3;

int64_t NowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void SleepUntilNanos(int64_t t) {
  std::this_thread::sleep_until(std::chrono::steady_clock::time_point(std::chrono::nanoseconds(t)));
}

const char* CodeName(int code) {
  static const char* const kNames[] = {
      "OK",           "CANCELLED",         "UNKNOWN",           "INVALID_ARGUMENT",
      "DEADLINE_EXCEEDED", "NOT_FOUND",    "ALREADY_EXISTS",    "PERMISSION_DENIED",
      "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",   "OUT_OF_RANGE",
      "UNIMPLEMENTED", "INTERNAL",         "UNAVAILABLE",       "DATA_LOSS",
      "UNAUTHENTICATED"};
  return code >= 0 && code < 17 ? kNames[code] : "UNRECOGNIZED";
}

// Latencies in nanoseconds, in log-linear buckets like HdrHistogram's: exact
// below 128 ns, then 64 buckets per power of two (relative error under 1.6%).
// Fixed size (~30 KiB) whatever the run length. Not thread-safe: one per
// client thread, merged at the end.
class Histogram {
 public:
  Histogram() : counts_(kBuckets, 0) {}

  void Add(int64_t nanos, uint64_t count = 1) {
    uint64_t v = nanos < 0 ? 0 : static_cast<uint64_t>(nanos);
    counts_[Index(v)] += count;
    total_ += count;
    max_ = std::max(max_, v);
  }

  void Merge(const Histogram& other) {
    for (int i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
    total_ += other.total_;
    max_ = std::max(max_, other.max_);
  }

  uint64_t total() const { return total_; }
  uint64_t max() const { return max_; }

  // The smallest bucket upper bound at or below which a fraction `q` of the
  // samples lie (capped at the exact maximum); 0 when empty.
  uint64_t Percentile(double q) const {
    if (total_ == 0) return 0;
    uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(total_));
    if (rank < 1) rank = 1;
    if (rank > total_) rank = total_;
    uint64_t seen = 0;
    for (int i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(UpperBound(i), max_);
    }
    return max_;
  }

 private:
  static constexpr int kHalf = 64;                  // buckets per power of two
  static constexpr int kBuckets = 58 * kHalf + kHalf;  // shifts 0..57

  static int Index(uint64_t v) {
    if (v < 2 * kHalf) return static_cast<int>(v);
    int msb = 63 - __builtin_clzll(v);
    int shift = msb - 6;  // leaves the top 7 bits: [64, 128)
    return shift * kHalf + static_cast<int>(v >> shift);
  }
  static uint64_t UpperBound(int index) {
    if (index < 2 * kHalf) return static_cast<uint64_t>(index);
    int shift = index / kHalf - 1;
    uint64_t top = static_cast<uint64_t>(index - shift * kHalf);
    return ((top + 1) << shift) - 1;
  }

  std::vector<uint64_t> counts_;
  uint64_t total_ = 0;
  uint64_t max_ = 0;
};

struct Config {
  std::string server;
  std::string mode;
  std::string channel;
  int clients;
  int payload_bytes;
  int batch_size;
  int window;
  int streams;
  double rate;
  absl::Duration duration;
  absl::Duration warmup;
  bool json;
  int server_pid;
  std::string run_id;
};

// "host:port" with a loopback host, or INVALID_ARGUMENT saying what is allowed.
absl::Status CheckLoopback(const std::string& target) {
  size_t colon = target.rfind(':');
  std::string host = colon == std::string::npos ? target : target.substr(0, colon);
  std::string port = colon == std::string::npos ? "" : target.substr(colon + 1);
  int port_number = 0;
  bool port_ok = absl::SimpleAtoi(port, &port_number) && port_number > 0 && port_number < 65536;
  bool ipv4_loopback = false;
  if (absl::StartsWith(host, "127.")) {
    int dots = 0;
    bool digits = true;
    for (char c : host) {
      if (c == '.') {
        ++dots;
      } else if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
        digits = false;
      }
    }
    ipv4_loopback = digits && dots == 3;
  }
  bool loopback = ipv4_loopback || host == "localhost" || host == "[::1]";
  if (!loopback || !port_ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--server: got \"", target,
        "\", want a loopback address with a port (127.0.0.1:PORT, localhost:PORT or "
        "[::1]:PORT): ledger_bench writes synthetic records that a ledger keeps forever, so "
        "it only loads a ledger on this machine"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Config> ReadFlags() {
  Config c;
  c.server = absl::GetFlag(FLAGS_server);
  c.mode = absl::GetFlag(FLAGS_mode);
  c.channel = absl::GetFlag(FLAGS_channel);
  c.clients = absl::GetFlag(FLAGS_clients);
  c.payload_bytes = absl::GetFlag(FLAGS_payload_bytes);
  c.batch_size = absl::GetFlag(FLAGS_batch_size);
  c.window = absl::GetFlag(FLAGS_window);
  c.streams = absl::GetFlag(FLAGS_streams);
  c.rate = absl::GetFlag(FLAGS_rate);
  c.duration = absl::GetFlag(FLAGS_duration);
  c.warmup = absl::GetFlag(FLAGS_warmup);
  c.json = absl::GetFlag(FLAGS_json);
  c.server_pid = absl::GetFlag(FLAGS_server_pid);
  c.run_id = absl::GetFlag(FLAGS_run_id);

  if (absl::Status s = CheckLoopback(c.server); !s.ok()) return s;
  auto bad = [](absl::string_view flag, const auto& got, absl::string_view want) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, ": got ", got, ", want ", want));
  };
  if (c.mode != "unary" && c.mode != "batch" && c.mode != "stream") {
    return bad("mode", c.mode, "unary, batch or stream");
  }
  if (c.channel != "per_client" && c.channel != "shared") {
    return bad("channel", c.channel, "per_client or shared");
  }
  if (c.clients < 1 || c.clients > 1024) return bad("clients", c.clients, "1 to 1024");
  if (c.payload_bytes < 1 || c.payload_bytes > (1 << 20) - 4096) {
    return bad("payload_bytes", c.payload_bytes, "1 to 1044480 (the ledger's payload limit)");
  }
  if (c.batch_size < 1 || c.batch_size > 10000) {
    return bad("batch_size", c.batch_size, "1 to 10000 (the server's default --max_batch_events)");
  }
  if (c.window < 1 || c.window > 8192) {
    return bad("window", c.window, "1 to 8192 (the server's in-flight limit per stream)");
  }
  if (c.streams < 1) return bad("streams", c.streams, "at least 1");
  if (c.rate < 0) return bad("rate", c.rate, "0 (as fast as possible) or more");
  if (c.duration <= absl::ZeroDuration() || c.duration > absl::Hours(2)) {
    return bad("duration", absl::FormatDuration(c.duration), "more than 0 and at most 2h");
  }
  if (c.warmup < absl::ZeroDuration() || c.warmup > absl::Minutes(10)) {
    return bad("warmup", absl::FormatDuration(c.warmup), "0 to 10m");
  }
  if (c.server_pid < 0) return bad("server_pid", c.server_pid, "a process id, or 0");
  if (c.run_id.empty()) {
    std::random_device rd;
    c.run_id = absl::StrFormat("%08x", rd());
  } else if (c.run_id.size() > 40) {
    return bad("run_id", c.run_id.size(), "at most 40 bytes");
  }
  return c;
}

// NewBenchChannel, defined with the run below.
absl::StatusOr<std::shared_ptr<grpc::Channel>> NewBenchChannel(const std::string& target,
                                                               int index);

// Where each partition's appends go, as the server's redirects taught it,
// and one channel per (address, channel index). Thread-safe.
class Router {
 public:
  // Every partition's appends go to `server` until a redirect says otherwise.
  Router(const std::string& server, int32_t partitions)
      : partitions_(partitions), owner_(partitions, server) {}

  int32_t partitions() const { return partitions_; }
  int32_t PartitionOfCase(const std::string& case_id) const {
    return static_cast<int32_t>(PartitionOf(case_id, static_cast<uint32_t>(partitions_)));
  }
  std::string OwnerOf(int32_t partition) const {
    absl::MutexLock lock(&mu_);
    return owner_[partition];
  }
  // A redirect named `address` for `partition`; INVALID_ARGUMENT (nothing
  // learnt) when it is not a loopback address.
  absl::Status Learn(int32_t partition, const std::string& address) {
    if (absl::Status s = CheckLoopback(address); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "redirected to \"", address, "\", which is not loopback: ledger_bench loads only a "
          "ledger on this machine"));
    }
    redirects_.fetch_add(1, std::memory_order_relaxed);
    absl::MutexLock lock(&mu_);
    owner_[partition] = address;
    return absl::OkStatus();
  }
  // The channel of client `index` (0 for all with --channel=shared) to `address`.
  absl::StatusOr<std::shared_ptr<grpc::Channel>> ChannelTo(const std::string& address, int index) {
    absl::MutexLock lock(&mu_);
    std::shared_ptr<grpc::Channel>& c = channels_[{address, index}];
    if (c == nullptr) {
      absl::StatusOr<std::shared_ptr<grpc::Channel>> made = NewBenchChannel(address, index);
      if (!made.ok()) return made.status();
      c = *std::move(made);
    }
    return c;
  }
  uint64_t redirects() const { return redirects_.load(std::memory_order_relaxed); }

 private:
  const int32_t partitions_;
  mutable absl::Mutex mu_;
  std::vector<std::string> owner_ ABSL_GUARDED_BY(mu_);  // by partition
  std::map<std::pair<std::string, int>, std::shared_ptr<grpc::Channel>> channels_
      ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> redirects_{0};
};

using Stubs = std::map<std::string, std::unique_ptr<v1::LedgerService::Stub>>;

// A caller's stub to `address` on its channel `index`, made once and kept
// in `stubs`; INVALID_ARGUMENT when no channel can be made.
grpc::Status StubAt(Router& router, const std::string& address, int index, Stubs* stubs,
                    v1::LedgerService::Stub** out) {
  std::unique_ptr<v1::LedgerService::Stub>& stub = (*stubs)[address];
  if (stub == nullptr) {
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = router.ChannelTo(address, index);
    if (!channel.ok()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          std::string(channel.status().message()));
    }
    stub = v1::LedgerService::NewStub(*channel);
  }
  *out = stub.get();
  return grpc::Status::OK;
}

// Calls `call` with the stub of the node owning `partition` and follows the
// redirects it gets (at most kMaxRedirects), remembering each owner.
// `stubs` caches the caller's stubs by address; `deadline` bounds each try.
template <typename Call>
grpc::Status CallOwner(Router& router, int32_t partition, int channel_index, Stubs* stubs,
                       std::chrono::system_clock::time_point deadline, const Call& call) {
  std::string at = router.OwnerOf(partition);
  for (int hops = 0;; ++hops) {
    v1::LedgerService::Stub* stub = nullptr;
    if (grpc::Status s = StubAt(router, at, channel_index, stubs, &stub); !s.ok()) return s;
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline);
    grpc::Status status = call(stub, &ctx);
    if (status.ok() || status.error_code() != grpc::StatusCode::UNAVAILABLE) return status;
    const std::string owner = RedirectAddress(ctx);
    if (owner.empty() || owner == at || hops == kMaxRedirects) return status;
    if (absl::Status s = router.Learn(partition, owner); !s.ok()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(s.message()));
    }
    at = owner;
  }
}

// What one client saw in the measured window (errors: over the whole run).
struct Tally {
  Histogram latency;          // per acknowledged event
  uint64_t ok_events = 0;
  uint64_t ok_calls = 0;      // Append or AppendBatch calls, or stream responses
  uint64_t failed_events = 0; // in failed calls, or unanswered on a failed stream
  std::map<int, uint64_t> errors;  // status code -> failed calls (stream mode: streams)

  void Merge(const Tally& o) {
    latency.Merge(o.latency);
    ok_events += o.ok_events;
    ok_calls += o.ok_calls;
    failed_events += o.failed_events;
    for (const auto& [code, n] : o.errors) errors[code] += n;
  }
};

// Times of the run, steady-clock nanoseconds.
struct Schedule {
  int64_t start;
  int64_t measure;  // start + warmup
  int64_t end;      // measure + duration: no send at or after this
};

std::string CaseId(const Config& c, uint64_t k) {
  return absl::StrCat("bench-", c.run_id, "-case-", k);
}
std::string SubjectId(const Config& c, uint64_t k) {
  return absl::StrCat("bench-", c.run_id, "-client-", k);
}

// Opens the --streams cases (case_opened must be each case's first event),
// in batches of one partition each, before the clock starts.
absl::Status OpenCases(const Config& config, Router& router) {
  constexpr int kChunk = 500;
  int64_t wall = absl::ToUnixMicros(absl::Now());
  std::vector<std::vector<int>> by_partition(router.partitions());
  for (int k = 0; k < config.streams; ++k) {
    by_partition[router.PartitionOfCase(CaseId(config, k))].push_back(k);
  }
  Stubs stubs;
  for (int32_t p = 0; p < router.partitions(); ++p) {
    const std::vector<int>& cases = by_partition[p];
    for (size_t first = 0; first < cases.size(); first += kChunk) {
      v1::AppendBatchRequest request;
      for (size_t i = first; i < std::min(cases.size(), first + kChunk); ++i) {
        const int k = cases[i];
        v1::Event* e = request.add_requests()->mutable_event();
        e->set_event_id(absl::StrCat(config.run_id, "-open-", k));
        e->set_stream_id(CaseId(config, k));
        e->add_subject_ids(SubjectId(config, k));
        e->set_producer("ledger_bench");
        e->mutable_occurred_at()->set_seconds(wall / 1000000);
        v1::CaseOpened* body = e->mutable_case_opened();
        body->set_program("ledger_bench");
        body->set_jurisdiction("US-CA");
        body->set_record_class(v1::RECORD_CLASS_GENERAL);
        body->set_reason("load test");
      }
      v1::AppendBatchResponse response;
      grpc::Status status = CallOwner(
          router, p, 0, &stubs, std::chrono::system_clock::now() + std::chrono::seconds(30),
          [&](v1::LedgerService::Stub* stub, grpc::ClientContext* ctx) {
            return stub->AppendBatch(ctx, request, &response);
          });
      if (!status.ok()) {
        return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                            absl::StrCat("opening cases of partition ", p, ": ",
                                         status.error_message()));
      }
    }
  }
  return absl::OkStatus();
}

// One client: a thread (two in stream mode) that appends until the end of the
// run. `config`, `schedule`, `text_pool` and the channel must outlive it.
class Client {
 public:
  Client(int index, const Config& config, const Schedule& schedule,
         const std::string& text_pool, Router* router)
      : index_(index),
        config_(config),
        schedule_(schedule),
        text_pool_(text_pool),
        router_(router),
        channel_index_(config.channel == "shared" ? 0 : index) {
    const uint64_t clients = static_cast<uint64_t>(config_.clients);
    const uint64_t streams = static_cast<uint64_t>(config_.streams);
    const uint64_t share = std::max<uint64_t>(1, streams / clients);
    // With P > 1 a batch takes this client's cases of one partition.
    if (router_->partitions() > 1) {
      std::vector<std::vector<uint64_t>> by_partition(router_->partitions());
      for (uint64_t j = 0; j < share; ++j) {
        const uint64_t stream = (index_ + clients * j) % streams;
        by_partition[router_->PartitionOfCase(CaseId(config_, stream))].push_back(stream);
      }
      for (int32_t p = 0; p < router_->partitions(); ++p) {
        if (!by_partition[p].empty()) own_.push_back({p, std::move(by_partition[p]), 0});
      }
    }
    if (config_.rate > 0) {
      interval_ = 1e9 * config_.clients / config_.rate;
      // Spread the clients' schedules over one interval.
      next_send_ = static_cast<double>(schedule_.start) + interval_ * index_ / config_.clients;
    }
    deadline_ = std::chrono::system_clock::now() +
                std::chrono::nanoseconds(schedule_.end - NowNanos()) +
                std::chrono::nanoseconds(absl::ToInt64Nanoseconds(kDrainDeadline));
  }

  void Run() {
    if (config_.mode == "unary") {
      RunUnary();
    } else if (config_.mode == "batch") {
      RunBatch();
    } else {
      RunStream();
    }
  }

  // Events acknowledged so far, warmup included; any thread.
  uint64_t acked() const { return acked_.load(std::memory_order_relaxed); }
  // After Run returns.
  const Tally& tally() const { return tally_; }

 private:
  // Waits for the next send time of `events` events and sets `*send` to it;
  // false once the run is over.
  bool Pace(int events, int64_t* send) {
    if (config_.rate <= 0) {
      *send = NowNanos();
      return *send < schedule_.end;
    }
    *send = static_cast<int64_t>(next_send_);
    next_send_ += interval_ * events;
    if (*send >= schedule_.end) return false;
    if (*send > NowNanos()) SleepUntilNanos(*send);
    return true;
  }

  // This client's cases of one partition, for batches with P > 1.
  struct OwnCases {
    int32_t partition;
    std::vector<uint64_t> streams;
    size_t next;  // round robin
  };

  // The next case of this client's share, round robin.
  uint64_t NextStream() const {
    // Each client writes to its own share of the cases (client i: cases i, i + clients, ...),
    // round robin, so that no two clients' events race in one case: the policy refuses an
    // event dated before the case's latest one (services/policy/RULES.md T3), and two
    // clients stamping occurred_at on their own would meet it. With fewer cases than
    // clients, clients share them.
    const uint64_t clients = static_cast<uint64_t>(config_.clients);
    const uint64_t streams = static_cast<uint64_t>(config_.streams);
    const uint64_t share = std::max<uint64_t>(1, streams / clients);
    return (index_ + clients * (sequence_ % share)) % streams;
  }

  void FillEvent(v1::Event* e, int64_t wall_micros, uint64_t stream) {
    const uint64_t clients = static_cast<uint64_t>(config_.clients);
    const uint64_t n = clients * sequence_ + static_cast<uint64_t>(index_);  // unique in run
    ++sequence_;
    std::string id = absl::StrCat(config_.run_id, "-", index_, "-", sequence_);
    e->set_stream_id(CaseId(config_, stream));
    e->clear_subject_ids();
    e->add_subject_ids(SubjectId(config_, stream));
    e->set_producer("ledger_bench");
    e->mutable_occurred_at()->set_seconds(wall_micros / 1000000);
    e->mutable_occurred_at()->set_nanos(static_cast<int32_t>(wall_micros % 1000000) * 1000);
    v1::RecordEntryWritten* body = e->mutable_record_entry_written();
    body->set_entry_id(id);
    body->set_data_category("bench");
    body->set_author_id("ledger_bench");
    // A different stretch of random text each time, so storage compresses it
    // about as well as real notes rather than perfectly.
    uint64_t x = n * 0x9E3779B97F4A7C15ull;
    x ^= x >> 29;
    size_t offset = x % (text_pool_.size() - config_.payload_bytes);
    body->set_text(text_pool_.data() + offset, config_.payload_bytes);
    e->set_event_id(std::move(id));
  }

  // Records a finished call of `events` events sent at `sent`.
  void Record(int64_t sent, int64_t done, uint64_t events, const grpc::Status& status) {
    if (!status.ok()) {
      tally_.errors[status.error_code()]++;
      tally_.failed_events += events;
      if (!logged_error_) {
        logged_error_ = true;
        std::fprintf(stderr, "ledger_bench: client %d: first error: %s: %s\n", index_,
                     CodeName(status.error_code()), status.error_message().c_str());
      }
      return;
    }
    acked_.fetch_add(events, std::memory_order_relaxed);
    if (done < schedule_.measure || done > schedule_.end) return;
    tally_.ok_events += events;
    tally_.ok_calls++;
    tally_.latency.Add(done - sent, events);
  }

  // After a failed call, so that a dead server is not hammered.
  void BackOff() { std::this_thread::sleep_for(std::chrono::milliseconds(50)); }

  void RunUnary() {
    v1::AppendRequest request;
    v1::AppendResponse response;
    int64_t sent;
    while (Pace(1, &sent)) {
      const uint64_t stream = NextStream();
      FillEvent(request.mutable_event(), absl::ToUnixMicros(absl::Now()), stream);
      const int32_t partition =
          router_->partitions() > 1 ? router_->PartitionOfCase(request.event().stream_id()) : 0;
      grpc::Status status = CallOwner(
          *router_, partition, channel_index_, &stubs_, deadline_,
          [&](v1::LedgerService::Stub* stub, grpc::ClientContext* ctx) {
            return stub->Append(ctx, request, &response);
          });
      Record(sent, NowNanos(), 1, status);
      if (!status.ok()) BackOff();
    }
  }

  void RunBatch() {
    v1::AppendBatchRequest request;
    for (int i = 0; i < config_.batch_size; ++i) request.add_requests();
    v1::AppendBatchResponse response;
    int64_t sent;
    while (Pace(config_.batch_size, &sent)) {
      int64_t wall = absl::ToUnixMicros(absl::Now());
      int32_t partition = 0;
      if (own_.empty()) {
        for (auto& r : *request.mutable_requests()) FillEvent(r.mutable_event(), wall, NextStream());
      } else {
        // One partition per batch, in turn.
        OwnCases& cases = own_[batches_++ % own_.size()];
        partition = cases.partition;
        for (auto& r : *request.mutable_requests()) {
          FillEvent(r.mutable_event(), wall, cases.streams[cases.next++ % cases.streams.size()]);
        }
      }
      grpc::Status status = CallOwner(
          *router_, partition, channel_index_, &stubs_, deadline_,
          [&](v1::LedgerService::Stub* stub, grpc::ClientContext* ctx) {
            return stub->AppendBatch(ctx, request, &response);
          });
      if (status.ok() && response.results_size() != config_.batch_size) {
        status = grpc::Status(grpc::StatusCode::INTERNAL,
                              absl::StrCat("AppendBatch: got ", response.results_size(),
                                           " results, want ", config_.batch_size));
      }
      Record(sent, NowNanos(), config_.batch_size, status);
      if (!status.ok()) BackOff();
    }
  }

  // Streams until the end of the run; a stream that fails is counted and
  // replaced by a new one.
  void RunStream() {
    while (NowNanos() < schedule_.end) {
      grpc::Status status = OneStream();
      if (!status.ok()) BackOff();
    }
  }

  grpc::Status OneStream() {
    // One partition (checked at start): --server serves every case.
    v1::LedgerService::Stub* stub = nullptr;
    if (grpc::Status s = StubAt(*router_, config_.server, channel_index_, &stubs_, &stub);
        !s.ok()) {
      return s;
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline_);
    std::unique_ptr<grpc::ClientReaderWriter<v1::AppendRequest, v1::AppendResponse>> stream =
        stub->AppendStream(&ctx);
    struct Shared {
      absl::Mutex mu;
      // Send times of the unanswered requests, oldest first (responses come
      // in request order).
      std::deque<int64_t> in_flight ABSL_GUARDED_BY(mu);
      bool reader_done ABSL_GUARDED_BY(mu) = false;
    } s;
    std::thread reader([&] {
      v1::AppendResponse response;
      while (stream->Read(&response)) {
        int64_t now = NowNanos();
        int64_t sent;
        {
          absl::MutexLock lock(&s.mu);
          if (s.in_flight.empty()) break;  // more responses than requests: a server bug
          sent = s.in_flight.front();
          s.in_flight.pop_front();
        }
        Record(sent, now, 1, grpc::Status::OK);
      }
      absl::MutexLock lock(&s.mu);
      s.reader_done = true;
    });

    v1::AppendRequest request;
    const size_t window = static_cast<size_t>(config_.window);
    for (;;) {
      {
        absl::MutexLock lock(&s.mu);
        auto room = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu) {
          return s.in_flight.size() < window || s.reader_done;
        };
        s.mu.Await(absl::Condition(&room));
        if (s.reader_done) break;
      }
      int64_t sent;
      if (!Pace(1, &sent)) break;
      FillEvent(request.mutable_event(), absl::ToUnixMicros(absl::Now()), NextStream());
      {
        absl::MutexLock lock(&s.mu);
        s.in_flight.push_back(sent);
      }
      if (!stream->Write(request)) break;
    }
    stream->WritesDone();
    reader.join();
    grpc::Status status = stream->Finish();
    absl::MutexLock lock(&s.mu);
    if (status.ok() && !s.in_flight.empty()) {
      status = grpc::Status(grpc::StatusCode::INTERNAL,
                            absl::StrCat("AppendStream ended OK with ", s.in_flight.size(),
                                         " requests unanswered"));
    }
    if (!status.ok()) Record(0, NowNanos(), s.in_flight.size(), status);
    return status;
  }

  const int index_;
  const Config& config_;
  const Schedule& schedule_;
  const std::string& text_pool_;
  Router* const router_;
  const int channel_index_;
  Stubs stubs_;  // by address: --server's, and the owners redirects named
  std::vector<OwnCases> own_;  // P > 1 only
  uint64_t batches_ = 0;
  std::chrono::system_clock::time_point deadline_;
  double interval_ = 0;   // ns between this client's events, when paced
  double next_send_ = 0;  // steady ns
  uint64_t sequence_ = 0;
  bool logged_error_ = false;
  std::atomic<uint64_t> acked_{0};
  Tally tally_;  // written by the thread that receives responses
};

// ---- Host and server measurements from /proc ----

// VmRSS of `pid` in KiB, or NOT_FOUND when the process is gone.
absl::StatusOr<uint64_t> ReadRssKib(int pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  if (!in) return absl::NotFoundError(absl::StrCat("/proc/", pid, "/status: cannot read"));
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, "VmRSS:")) {
      std::istringstream fields(line.substr(6));
      uint64_t kib = 0;
      fields >> kib;
      return kib;
    }
  }
  return absl::NotFoundError(absl::StrCat("/proc/", pid, "/status: no VmRSS (a zombie?)"));
}

struct ThreadCpu {
  std::string name;
  uint64_t ticks;  // utime + stime
};

// Name and CPU ticks from a /proc/.../stat file; NOT_FOUND once it is gone.
// For /proc/PID/stat the ticks include the process's exited threads.
absl::StatusOr<ThreadCpu> ReadStatTicks(const std::string& path) {
  std::ifstream in(path);
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t open = stat.find('(');
  size_t close = stat.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot read"));
  }
  // After "pid (comm) ": state ppid pgrp session tty_nr tpgid flags minflt
  // cminflt majflt cmajflt utime stime.
  std::istringstream rest(stat.substr(close + 1));
  std::string skip;
  for (int i = 0; i < 11; ++i) rest >> skip;
  uint64_t utime = 0, stime = 0;
  rest >> utime >> stime;
  return ThreadCpu{stat.substr(open + 1, close - open - 1), utime + stime};
}

// CPU ticks of every live thread of `pid`, by thread id.
std::map<int, ThreadCpu> ReadThreadCpu(int pid) {
  std::map<int, ThreadCpu> out;
  std::string dir = absl::StrCat("/proc/", pid, "/task");
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* entry = readdir(d)) {
    int tid = 0;
    if (!absl::SimpleAtoi(entry->d_name, &tid)) continue;
    absl::StatusOr<ThreadCpu> t = ReadStatTicks(absl::StrCat(dir, "/", tid, "/stat"));
    if (t.ok()) out[tid] = *std::move(t);
  }
  closedir(d);
  return out;
}

uint64_t ReadProcessTicks(int pid) {
  absl::StatusOr<ThreadCpu> t = ReadStatTicks(absl::StrCat("/proc/", pid, "/stat"));
  return t.ok() ? t->ticks : 0;
}

struct HostCpu {
  uint64_t busy = 0;
  uint64_t iowait = 0;
  uint64_t total = 0;
};

HostCpu ReadHostCpu() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  uint64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0,
           steal = 0;
  in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
  HostCpu h;
  h.busy = user + nice + system + irq + softirq + steal;
  h.iowait = iowait;
  h.total = h.busy + idle + iowait;
  return h;
}

double ProcessCpuSeconds() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// Samples a process's VmRSS every second on its own thread until destroyed.
class RssSampler {
 public:
  explicit RssSampler(int pid) : pid_(pid), thread_([this] { Loop(); }) {}
  ~RssSampler() {
    stop_.Notify();
    thread_.join();
  }
  uint64_t max_kib() const {
    absl::MutexLock lock(&mu_);
    return max_kib_;
  }
  uint64_t last_kib() const {
    absl::MutexLock lock(&mu_);
    return last_kib_;
  }
  bool gone() const {
    absl::MutexLock lock(&mu_);
    return gone_;
  }

 private:
  void Loop() {
    do {
      absl::StatusOr<uint64_t> kib = ReadRssKib(pid_);
      absl::MutexLock lock(&mu_);
      if (!kib.ok()) {
        gone_ = true;
        return;
      }
      last_kib_ = *kib;
      max_kib_ = std::max(max_kib_, *kib);
    } while (!stop_.WaitForNotificationWithTimeout(absl::Seconds(1)));
  }

  const int pid_;
  mutable absl::Mutex mu_;
  uint64_t max_kib_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t last_kib_ ABSL_GUARDED_BY(mu_) = 0;
  bool gone_ ABSL_GUARDED_BY(mu_) = false;
  absl::Notification stop_;
  std::thread thread_;  // last: starts after the fields above exist
};

// ---- The run ----

// Plaintext, or mutual TLS with --ca, --cert and --key_file (tools/channel.h).
absl::StatusOr<std::shared_ptr<grpc::Channel>> NewBenchChannel(const std::string& target,
                                                               int index) {
  ChannelOptions options;
  options.target = target;
  options.ca_file = absl::GetFlag(FLAGS_ca);
  options.cert_file = absl::GetFlag(FLAGS_cert);
  options.key_file = absl::GetFlag(FLAGS_key_file);
  options.tls_server_name = absl::GetFlag(FLAGS_tls_server_name);
  options.max_receive_message_bytes = 64 << 20;
  grpc::ChannelArguments args;
  // Channels with equal arguments share one connection unless told not to.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt("caseledger.ledger_bench.channel", index);
  return NewChannel(options, args);
}

std::string RandomText(size_t n) {
  static const char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz      .,eeetaoin";
  std::mt19937_64 rng(42);
  std::string s(n, ' ');
  for (char& c : s) c = kAlphabet[rng() % (sizeof(kAlphabet) - 1)];
  return s;
}

std::string Ms(uint64_t nanos) { return absl::StrFormat("%.3f", nanos / 1e6); }

int Run(const Config& config) {
  const bool stream_mode = config.mode == "stream";
  std::unique_ptr<RssSampler> rss;
  if (config.server_pid != 0) {
    absl::StatusOr<uint64_t> first = ReadRssKib(config.server_pid);
    if (!first.ok()) {
      std::fprintf(stderr, "ledger_bench: --server_pid=%d: %s\n", config.server_pid,
                   std::string(first.status().message()).c_str());
      return 2;
    }
    rss = std::make_unique<RssSampler>(config.server_pid);
  }

  // P, from the server's GetPublicKey (0 from a single node).
  int32_t partitions = 1;
  {
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = NewBenchChannel(config.server, -1);
    if (!channel.ok()) {
      std::fprintf(stderr, "ledger_bench: %s\n", std::string(channel.status().message()).c_str());
      return 2;
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    ctx.set_wait_for_ready(true);
    v1::PublicKey key;
    grpc::Status s = v1::LedgerService::NewStub(*channel)->GetPublicKey(
        &ctx, v1::GetPublicKeyRequest(), &key);
    if (!s.ok()) {
      std::fprintf(stderr, "ledger_bench: GetPublicKey at %s: %s: %s (is the server up?)\n",
                   config.server.c_str(), CodeName(s.error_code()), s.error_message().c_str());
      return 2;
    }
    partitions = std::max<int32_t>(1, static_cast<int32_t>(key.partitions()));
  }
  if (stream_mode && partitions > 1) {
    std::fprintf(stderr,
                 "ledger_bench: --mode=stream: got a partitioned server (P = %d), want one "
                 "partition: an AppendStream goes to one node; use unary or batch, which "
                 "follow redirects\n",
                 partitions);
    return 2;
  }
  Router router(config.server, partitions);
  int channel_count = config.channel == "shared" ? 1 : config.clients;
  for (int i = 0; i < channel_count; ++i) {
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = router.ChannelTo(config.server, i);
    if (!channel.ok()) {
      std::fprintf(stderr, "ledger_bench: %s\n", std::string(channel.status().message()).c_str());
      return 2;
    }
    if (!(*channel)->WaitForConnected(std::chrono::system_clock::now() +
                                      std::chrono::seconds(5))) {
      std::fprintf(stderr, "ledger_bench: cannot connect to %s within 5 s (is the server up?)\n",
                   config.server.c_str());
      return 2;
    }
  }
  int64_t open_start = NowNanos();
  if (absl::Status s = OpenCases(config, router); !s.ok()) {
    std::fprintf(stderr, "ledger_bench: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  std::fprintf(stderr, "ledger_bench: opened %d cases in %.2f s (not measured)\n", config.streams,
               (NowNanos() - open_start) / 1e9);
  const std::string text_pool =
      RandomText(std::max(kTextPoolBytes, 4 * static_cast<size_t>(config.payload_bytes)));

  std::string what = absl::StrCat(
      "mode=", config.mode, " clients=", config.clients, " channel=", config.channel,
      " payload_bytes=", config.payload_bytes,
      config.mode == "batch" ? absl::StrCat(" batch_size=", config.batch_size) : "",
      stream_mode ? absl::StrCat(" window=", config.window) : "",
      " rate=", config.rate > 0 ? absl::StrCat(config.rate) : "max", " streams=", config.streams,
      partitions > 1 ? absl::StrCat(" partitions=", partitions) : "", " run_id=", config.run_id);
  std::fprintf(stderr, "ledger_bench: %s; warmup %s, then measuring %s\n", what.c_str(),
               absl::FormatDuration(config.warmup).c_str(),
               absl::FormatDuration(config.duration).c_str());

  Schedule schedule;
  schedule.start = NowNanos();
  schedule.measure = schedule.start + absl::ToInt64Nanoseconds(config.warmup);
  schedule.end = schedule.measure + absl::ToInt64Nanoseconds(config.duration);

  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < config.clients; ++i) {
    clients.push_back(std::make_unique<Client>(i, config, schedule, text_pool, &router));
  }
  std::vector<std::thread> threads;
  for (auto& c : clients) threads.emplace_back([&c] { c->Run(); });

  auto acked = [&] {
    uint64_t n = 0;
    for (auto& c : clients) n += c->acked();
    return n;
  };

  // Progress every 5 s; snapshots at the start and end of the measured window.
  const int64_t every = absl::ToInt64Nanoseconds(kProgressEvery);
  int64_t next_progress = schedule.start + every;
  bool measuring = false;
  uint64_t acked_at_measure = 0, last_acked = 0;
  int64_t last_time = schedule.start;
  double cpu_at_measure = 0;
  HostCpu host_at_measure;
  std::map<int, ThreadCpu> threads_at_measure;
  uint64_t server_ticks_at_measure = 0;
  for (;;) {
    int64_t wake = std::min(next_progress, schedule.end);
    if (!measuring) wake = std::min(wake, schedule.measure);
    SleepUntilNanos(wake);
    int64_t now = NowNanos();
    if (!measuring && now >= schedule.measure) {
      measuring = true;
      acked_at_measure = acked();
      cpu_at_measure = ProcessCpuSeconds();
      host_at_measure = ReadHostCpu();
      if (config.server_pid != 0) {
        threads_at_measure = ReadThreadCpu(config.server_pid);
        server_ticks_at_measure = ReadProcessTicks(config.server_pid);
      }
    }
    if (now >= schedule.end) break;
    if (now >= next_progress) {
      uint64_t n = acked();
      double since_measure = (now - schedule.measure) / 1e9;
      std::string line = absl::StrFormat(
          "[%5.0fs] %llu events acked; %.0f events/s in the last %.0fs", (now - schedule.start) / 1e9,
          static_cast<unsigned long long>(n), (n - last_acked) / ((now - last_time) / 1e9),
          (now - last_time) / 1e9);
      if (measuring && since_measure > 0) {
        absl::StrAppendFormat(&line, ", %.0f events/s since warmup",
                              (n - acked_at_measure) / since_measure);
      }
      if (rss != nullptr) {
        absl::StrAppendFormat(&line, "; server RSS %.1f MiB", rss->last_kib() / 1024.0);
        if (rss->gone()) line += " (server process gone)";
      }
      std::fprintf(stderr, "%s\n", line.c_str());
      last_acked = n;
      last_time = now;
      next_progress += every;
    }
  }
  // End of the measured window: snapshot before the clients drain.
  int64_t measured_end = NowNanos();
  double client_cpu = ProcessCpuSeconds() - cpu_at_measure;
  HostCpu host_end = ReadHostCpu();
  std::map<int, ThreadCpu> threads_end;
  uint64_t server_ticks_end = 0;
  if (config.server_pid != 0) {
    threads_end = ReadThreadCpu(config.server_pid);
    server_ticks_end = ReadProcessTicks(config.server_pid);
  }

  for (auto& t : threads) t.join();
  Tally total;
  for (auto& c : clients) total.Merge(c->tally());

  // ---- Report ----
  double seconds = (std::min(measured_end, schedule.end) - schedule.measure) / 1e9;
  double throughput = total.ok_events / seconds;
  uint64_t error_calls = 0;
  std::vector<std::string> error_text, error_json;
  for (const auto& [code, n] : total.errors) {
    error_calls += n;
    error_text.push_back(absl::StrCat(CodeName(code), " ", n));
    error_json.push_back(absl::StrCat("\"", CodeName(code), "\":", n));
  }
  double host_total = static_cast<double>(host_end.total - host_at_measure.total);
  double host_busy = host_total > 0 ? 100.0 * (host_end.busy - host_at_measure.busy) / host_total : 0;
  double host_iowait =
      host_total > 0 ? 100.0 * (host_end.iowait - host_at_measure.iowait) / host_total : 0;
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  // Busy cores not used by this process or the server: other load on the
  // host that the numbers share the machine with.
  auto other_cores = [&](double server) {
    return std::max(0.0, host_busy / 100.0 * cores - client_cpu / seconds - server);
  };
  const double ticks_per_second = static_cast<double>(sysconf(_SC_CLK_TCK));

  // Server CPU per thread and per thread name over the window, in cores.
  struct Usage {
    std::string name;
    int tid;
    double cores;
  };
  std::vector<Usage> per_thread;
  std::map<std::string, std::pair<int, double>> per_name;  // name -> (threads, cores)
  // The whole process's ticks include threads that ended in the window
  // (gRPC's sync server starts and retires request threads as load changes).
  const double server_cores =
      (server_ticks_end - std::min(server_ticks_at_measure, server_ticks_end)) /
      ticks_per_second / seconds;
  double live_cores = 0;
  for (const auto& [tid, t] : threads_end) {
    uint64_t before = 0;
    if (auto it = threads_at_measure.find(tid); it != threads_at_measure.end()) {
      before = it->second.ticks;
    }
    double cores = (t.ticks - std::min(before, t.ticks)) / ticks_per_second / seconds;
    live_cores += cores;
    per_thread.push_back({t.name, tid, cores});
    per_name[t.name].first++;
    per_name[t.name].second += cores;
  }
  if (server_cores - live_cores >= 0.01) {
    per_name["(exited threads)"] = {0, server_cores - live_cores};
  }
  std::sort(per_thread.begin(), per_thread.end(),
            [](const Usage& a, const Usage& b) { return a.cores > b.cores; });

  const Histogram& h = total.latency;
  std::string report = absl::StrFormat(
      "ledger_bench: %s\n"
      "  measured     %.1f s (after %s warmup)\n"
      "  events       %llu acknowledged in %llu %s\n"
      "  errors       %s\n"
      "  throughput   %.0f events/s (%.1f MB/s of event text)\n"
      "  latency ms   p50 %s  p90 %s  p99 %s  max %s  (per event, %s)\n"
      "  client CPU   %.2f cores (this process)\n"
      "  host CPU     %.0f%% busy, %.0f%% iowait (%d cores)%s\n",
      what, seconds, absl::FormatDuration(config.warmup),
      static_cast<unsigned long long>(total.ok_events),
      static_cast<unsigned long long>(total.ok_calls),
      stream_mode ? "stream responses" : "calls",
      error_calls == 0 ? std::string("none")
                       : absl::StrCat(absl::StrJoin(error_text, ", "), " (",
                                      stream_mode ? "streams" : "calls", "; ",
                                      total.failed_events, " events not acknowledged)"),
      throughput, throughput * config.payload_bytes / 1e6, Ms(h.Percentile(0.50)),
      Ms(h.Percentile(0.90)), Ms(h.Percentile(0.99)), Ms(h.max()),
      config.rate > 0 ? "from scheduled send to acknowledgement"
                      : "from send to acknowledgement",
      client_cpu / seconds, host_busy, host_iowait, cores,
      rss != nullptr
          ? absl::StrFormat("; other processes %.2f cores", other_cores(server_cores))
          : std::string());
  if (partitions > 1) {
    absl::StrAppendFormat(&report, "  partitions   P = %d; %llu redirects followed (warmup included)\n",
                          partitions, static_cast<unsigned long long>(router.redirects()));
  }
  if (rss != nullptr) {
    absl::StrAppendFormat(&report, "  server       max RSS %.1f MiB%s; CPU %.2f cores\n",
                          rss->max_kib() / 1024.0, rss->gone() ? " (process exited)" : "",
                          server_cores);
    std::vector<std::string> names;
    for (const auto& [name, usage] : per_name) {
      if (usage.second >= 0.01) {
        names.push_back(absl::StrFormat("%s x%d %.2f", name, usage.first, usage.second));
      }
    }
    absl::StrAppend(&report, "  by name      ", absl::StrJoin(names, "; "), "\n");
    std::vector<std::string> top;
    for (size_t i = 0; i < per_thread.size() && i < 8; ++i) {
      top.push_back(absl::StrFormat("%d %s %.2f", per_thread[i].tid, per_thread[i].name,
                                    per_thread[i].cores));
    }
    absl::StrAppend(&report, "  top threads  ", absl::StrJoin(top, "; "), " (cores)\n");
  }
  std::fputs(report.c_str(), stderr);

  if (config.json) {
    std::vector<std::string> threads_json;
    for (size_t i = 0; i < per_thread.size() && i < 8; ++i) {
      threads_json.push_back(absl::StrFormat("{\"tid\":%d,\"name\":\"%s\",\"cores\":%.3f}",
                                             per_thread[i].tid, per_thread[i].name,
                                             per_thread[i].cores));
    }
    std::string json = absl::StrFormat(
        "{\"mode\":\"%s\",\"clients\":%d,\"channel\":\"%s\",\"payload_bytes\":%d,"
        "\"batch_size\":%d,\"window\":%d,\"rate\":%.0f,\"streams\":%d,\"run_id\":\"%s\","
        "\"seconds\":%.3f,\"events\":%llu,\"calls\":%llu,\"errors\":{%s},"
        "\"failed_events\":%llu,\"events_per_sec\":%.1f,"
        "\"latency_ms\":{\"p50\":%s,\"p90\":%s,\"p99\":%s,\"max\":%s},"
        "\"client_cores\":%.3f,\"host_busy_pct\":%.1f,\"host_iowait_pct\":%.1f",
        config.mode, config.clients, config.channel, config.payload_bytes,
        config.mode == "batch" ? config.batch_size : 1, stream_mode ? config.window : 1,
        config.rate, config.streams, config.run_id, seconds,
        static_cast<unsigned long long>(total.ok_events),
        static_cast<unsigned long long>(total.ok_calls), absl::StrJoin(error_json, ","),
        static_cast<unsigned long long>(total.failed_events), throughput,
        Ms(h.Percentile(0.50)), Ms(h.Percentile(0.90)), Ms(h.Percentile(0.99)), Ms(h.max()),
        client_cpu / seconds, host_busy, host_iowait);
    absl::StrAppendFormat(&json, ",\"partitions\":%d,\"redirects\":%llu", partitions,
                          static_cast<unsigned long long>(router.redirects()));
    if (rss != nullptr) {
      absl::StrAppendFormat(&json,
                            ",\"server_max_rss_mib\":%.1f,\"server_cores\":%.3f,"
                            "\"other_cores\":%.3f,\"server_top_threads\":[%s]",
                            rss->max_kib() / 1024.0, server_cores, other_cores(server_cores),
                            absl::StrJoin(threads_json, ","));
    }
    json += "}\n";
    std::fputs(json.c_str(), stdout);
    std::fflush(stdout);
  }
  return error_calls == 0 ? 0 : 1;
}

}  // namespace
}  // namespace caseledger

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Load generator for the ledger's append RPCs (loopback servers only).\n"
      "  ledger_bench --server=127.0.0.1:7070 --mode=unary|batch|stream --clients=N\n"
      "      --payload_bytes=512 --duration=60s [--batch_size=100] [--window=1000]\n"
      "      [--rate=EVENTS_PER_SEC] [--streams=1000] [--warmup=2s] [--channel=per_client|shared]\n"
      "      [--server_pid=PID] [--json]\n"
      "Runs --warmup + --duration and stops; exits 0 when no call failed, 1 when some did,\n"
      "2 on bad flags or an unreachable server.");
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  if (rest.size() > 1) {
    std::fprintf(stderr, "ledger_bench: unexpected argument \"%s\" (flags only; see --help)\n",
                 rest[1]);
    return 2;
  }
  absl::StatusOr<caseledger::Config> config = caseledger::ReadFlags();
  if (!config.ok()) {
    std::fprintf(stderr, "ledger_bench: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  return caseledger::Run(*config);
}
