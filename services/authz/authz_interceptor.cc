#include "services/authz/authz_interceptor.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <grpcpp/support/byte_buffer.h>

#include <cstdio>
#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "proto/ledger.pb.h"
#include "services/authz/authz_verdict.h"
#include "services/append/event_codec.h"
#include "services/common/grpc_status.h"
#include "services/authz/request_resources.h"

namespace caseledger {
namespace {

using grpc::experimental::InterceptionHookPoints;
using grpc::experimental::ServerRpcInfo;

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
  explicit ParseFailureNamer(ServerRpcInfo* info)
      : single_request_(info->type() == ServerRpcInfo::Type::UNARY ||
                        info->type() == ServerRpcInfo::Type::SERVER_STREAMING),
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
      m->ModifySendStatus(
          grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                       absl::StrCat("request: the body of this ", method_,
                                    " call is not a valid protobuf message of its request type")));
    }
  }

 private:
  const bool single_request_;
  const std::string method_;
  bool failed_ = false;
};

// One call. For a method whose client streams requests, the reader's
// per-request verdicts go to the verdict slot only: the call-level state
// below is written before the handler starts and read by the writer.
class AuthzInterceptor : public grpc::experimental::Interceptor {
 public:
  // `factory` is borrowed and must outlive the interceptor.
  AuthzInterceptor(AuthzInterceptorFactory* factory, ServerRpcInfo* info)
      : factory_(factory),
        info_(info),
        method_(info->method()),
        proto_(HasProtoRequest(method_)),
        streamed_requests_(info->type() == ServerRpcInfo::Type::CLIENT_STREAMING ||
                           info->type() == ServerRpcInfo::Type::BIDI_STREAMING),
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
      // A generated request type derives from Message alone, so the
      // pointer the server passed as void* is also the Message's.
      auto* message = static_cast<google::protobuf::Message*>(request);
      // A handler that took the per-request decisions over
      // (DeferRequestVerdicts) makes each when it acts on the request.
      if (request != nullptr && proto_ && principal_.has_value() && refusal_.ok() &&
          (streamed_requests_ ? !verdict_.RequestsDeferred() : !decided_)) {
        Publish(factory_->Decide(*principal_, method_, message),
                /*call_level=*/!streamed_requests_);
      }
      // A backstop only: a caseledger handler returns the verdict first and
      // never reads the request of a refused call.
      if (!refusal_.ok() && request != nullptr && proto_) message->Clear();
    }
    const bool sending = m->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_MESSAGE);
    const bool finishing = m->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS);
    if (sending && !decided_) {
      // An answer before any verdict: no handler of ours sends before its
      // request is decided, so withhold it.
      Publish(absl::InternalError(absl::StrCat(method_, " answered before it was authorized")),
              /*call_level=*/true);
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
  // Refuses at once when the caller cannot be named, their role may not use
  // the method at all, or the method is not ours (no request to read);
  // admits the caller of a client stream, whose requests are each decided;
  // otherwise waits for the request.
  void CheckCaller() {
    std::shared_ptr<const grpc::AuthContext> auth = info_->server_context()->auth_context();
    absl::StatusOr<Principal> who = factory_->Identify(auth.get());
    if (!who.ok()) {
      factory_->RefuseUnidentified(method_, who.status());
      Publish(who.status(), /*call_level=*/true);
      return;
    }
    principal_ = *who;
    const MethodPolicy* row = FindPolicy(method_);
    if (row == nullptr || row->rules[static_cast<int>(who->role)] == Rule::kDeny || !proto_) {
      Publish(factory_->Decide(*principal_, method_, nullptr), /*call_level=*/true);
    } else if (streamed_requests_) {
      Decision caller;
      caller.rule = row->rules[static_cast<int>(who->role)];
      Publish(caller, /*call_level=*/true);
      // The same decision as on each request read, for a handler that
      // makes it later (the factory outlives the server's calls).
      verdict_.OfferRequestDecider(
          [factory = factory_, who = *principal_, method = method_](
              const google::protobuf::Message& request) -> absl::StatusOr<Admitted> {
            absl::StatusOr<Decision> d = factory->Decide(who, method, &request);
            if (!d.ok()) return d.status();
            return Admitted{who, *d};
          });
    }
  }

  // The verdict, for the handler (CallVerdict) and, when it is on the whole
  // call, for the backstop here.
  void Publish(const absl::StatusOr<Decision>& verdict, bool call_level) {
    if (call_level) {
      decided_ = true;
      refusal_ = verdict.status();
    }
    if (verdict.ok()) {
      verdict_.Decide(Admitted{*principal_, *verdict});
    } else {
      verdict_.Decide(verdict.status());
    }
  }

  // A handler of a caseledger service that answers a refused call with
  // anything but the refusal ran without returning the verdict first: a bug
  // in that handler, which the replaced answer hides from the caller.
  void NoteUnheeded(const grpc::Status& answered) {
    const grpc::Status refusal = ToGrpcStatus(refusal_);
    if (answered.error_code() == refusal.error_code() &&
        answered.error_message() == refusal.error_message()) {
      return;
    }
    factory_->NoteUnheeded();
    std::fprintf(stderr,
                 "caseledger: BUG: the handler of %s ran for a refused call (it answered %d "
                 "\"%s\"); it must return AuthzVerdict(*ctx) first\n",
                 method_.c_str(), static_cast<int>(answered.error_code()),
                 answered.error_message().c_str());
  }

  AuthzInterceptorFactory* const factory_;
  ServerRpcInfo* const info_;
  const std::string method_;
  const bool proto_;
  const bool streamed_requests_;
  std::optional<Principal> principal_;
  // The verdict on the whole call is reached (refusal_ holds it).
  bool decided_ = false;
  absl::Status refusal_;
  // A request arrived, so the handler is called.
  bool handler_runs_ = false;
  internal::VerdictSlot verdict_;
  ParseFailureNamer parse_;
};

}  // namespace

AuthzInterceptorFactory::AuthzInterceptorFactory(Authorizer* authz, ResourceDirectory* directory,
                                                 CaseGate* gate, AuthzInterceptorOptions options)
    : authz_(authz), directory_(directory), gate_(gate), options_(options) {}

grpc::experimental::Interceptor* AuthzInterceptorFactory::CreateServerInterceptor(
    ServerRpcInfo* info) {
  return new AuthzInterceptor(this, info);
}

absl::StatusOr<Principal> AuthzInterceptorFactory::Identify(const grpc::AuthContext* auth) const {
  return PrincipalOf(auth, options_.insecure_loopback);
}

void AuthzInterceptorFactory::RefuseUnidentified(const std::string& method,
                                                 const absl::Status& refusal) {
  // Recorded under a placeholder id: the caller could not be named.
  RecordRefusal(Principal{Role::kClient, "unidentified"}, method, Resource(), refusal);
}

absl::StatusOr<Decision> AuthzInterceptorFactory::Decide(const Principal& who,
                                                         const std::string& method,
                                                         const google::protobuf::Message* request) {
  std::vector<Resource> resources =
      request != nullptr ? ResourcesOf(*request) : std::vector<Resource>{Resource()};
  const bool batch = dynamic_cast<const v1::AppendBatchRequest*>(request) != nullptr;
  // A malformed request is answered as its handler would, before any
  // refusal or read is recorded.
  auto malformed = [&]() -> absl::Status {
    if (request == nullptr) return absl::OkStatus();
    return CheckFormBeforeAuthz(*request, options_.max_batch_events);
  };
  Decision decision;
  for (size_t i = 0; i < resources.size(); ++i) {
    absl::StatusOr<Decision> d = authz_->Check(who, method, resources[i]);
    if (!d.ok()) {
      if (d.status().code() != absl::StatusCode::kPermissionDenied) return d.status();
      if (absl::Status form = malformed(); !form.ok()) return form;
      RecordRefusal(who, method, resources[i], d.status());
      if (!batch) return d.status();
      return absl::Status(d.status().code(),
                          absl::StrCat("requests[", i, "]: ", d.status().message()));
    }
    decision = *d;
  }
  if (decision.record_access) {
    if (absl::Status form = malformed(); !form.ok()) return form;
    absl::Status recorded = RecordAccess(who, method, resources.front());
    if (!recorded.ok()) {
      absl::Status refused = absl::UnavailableError(absl::StrCat(
          "the read could not be recorded, so it is not served: ", recorded.message()));
      // Keeps the cause's payloads: a partitioned server's redirect to the
      // node that owns the case (services/cluster/partition_router.h), given
      // once the caller was allowed, so that the read is recorded there.
      recorded.ForEachPayload([&refused](absl::string_view url, const absl::Cord& payload) {
        refused.SetPayload(url, payload);
      });
      return refused;
    }
  }
  return decision;
}

std::vector<std::string> AuthzInterceptorFactory::SubjectsOf(const Resource& r) {
  if (!r.client_id.empty()) return {r.client_id};
  if (!r.case_id.empty()) {
    absl::StatusOr<CaseFacts> facts = directory_->Case(r.case_id);
    if (facts.ok()) return facts->clients;
  }
  return {};
}

void AuthzInterceptorFactory::RecordRefusal(const Principal& who, absl::string_view method,
                                            const Resource& resource, const absl::Status& refusal) {
  if (options_.on_refusal) options_.on_refusal(who.role);
  if (who.role == Role::kLocal) return;
  std::shared_ptr<CaseGate> gate = GateFor(kAccessStream);
  absl::Status s = absl::UnavailableError(
      absl::StrCat("this node does not own the partition of ", kAccessStream));
  if (gate != nullptr) {
    v1::Event wire = AccessRefusedEvent(who, method, resource, refusal, SubjectsOf(resource),
                                        gate->clock().Now());
    absl::StatusOr<Event> event = ToLedgerEvent(wire);
    s = event.status();
    if (event.ok()) {
      s = gate->AppendToServerStream(GatedEvent{std::move(wire), {*std::move(event), std::nullopt}})
              .status();
    }
  }
  // The refusal stands either way; the operator learns that it went unrecorded.
  if (!s.ok()) {
    std::fprintf(stderr, "caseledger: could not record a refusal of %s: %s\n",
                 std::string(method).c_str(), s.ToString().c_str());
  }
}

absl::Status AuthzInterceptorFactory::RecordAccess(const Principal& who, absl::string_view method,
                                                   const Resource& resource) {
  std::vector<std::string> subjects = SubjectsOf(resource);
  bool in_case = false;
  if (!resource.case_id.empty()) {
    absl::StatusOr<CaseFacts> facts = directory_->Case(resource.case_id);
    if (!facts.ok()) return facts.status();
    in_case = facts->exists;
  }
  // A read of one case is recorded in that case, where its clients find it
  // (checked by the gate like any event of the case); any other read in the
  // server's access stream.
  const std::string stream = in_case ? resource.case_id : kAccessStream;
  std::shared_ptr<CaseGate> gate = GateFor(stream);
  if (gate == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("this node does not own the partition of stream \"", stream, "\""));
  }
  v1::Event wire = RecordAccessEvent(who, method, resource, stream, subjects, gate->clock().Now());
  absl::StatusOr<Event> event = ToLedgerEvent(wire);
  if (!event.ok()) return event.status();
  GatedEvent gated{std::move(wire), {*std::move(event), std::nullopt}};
  if (!in_case) return gate->AppendToServerStream(std::move(gated)).status();
  std::vector<GatedEvent> one;
  one.push_back(std::move(gated));
  return gate->Append(std::move(one)).status();
}

std::shared_ptr<CaseGate> AuthzInterceptorFactory::GateFor(const std::string& stream_id) {
  if (options_.gate_for) return options_.gate_for(stream_id);
  // The one gate lives as long as the factory (borrowed): no ownership.
  return std::shared_ptr<CaseGate>(std::shared_ptr<CaseGate>(), gate_);
}

}  // namespace caseledger
