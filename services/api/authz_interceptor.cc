#include "services/api/authz_interceptor.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <grpcpp/support/byte_buffer.h>

#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
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
  AuthzInterceptor(AccessGuard* guard, grpc::experimental::ServerRpcInfo* info)
      : guard_(guard),
        info_(info),
        method_(info->method()),
        proto_(HasProtoRequest(method_)),
        parse_(info) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* m) override {
    parse_.Intercept(m);
    if (m->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      CheckCaller();
    }
    if (m->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE)) {
      void* request = m->GetRecvMessage();
      if (!checked_ && refusal_.ok() && request != nullptr) {
        // A generated request type derives from Message alone, so the
        // pointer the server passed as void* is also the Message's.
        Check(ResourceOf(*static_cast<google::protobuf::Message*>(request)));
      }
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
    if (finishing && !refusal_.ok()) m->ModifySendStatus(ToGrpcStatus(refusal_));
    m->Proceed();
  }

 private:
  // Refuses at once when the caller cannot be named or their role may not
  // use the method at all; otherwise waits for the request when it names
  // the resource.
  void CheckCaller() {
    absl::StatusOr<Principal> who = guard_->Identify(info_->server_context());
    if (!who.ok()) {
      refusal_ = guard_->Admit(info_->server_context(), method_, Resource()).status();
      checked_ = true;
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
    return r;
  }

  void Check(const Resource& resource) {
    checked_ = true;
    if (!principal_.has_value()) {
      refusal_ = absl::UnauthenticatedError("the caller could not be named");
      return;
    }
    refusal_ = guard_->AdmitAs(*principal_, method_, resource).status();
  }

  AccessGuard* const guard_;
  grpc::experimental::ServerRpcInfo* const info_;
  const std::string method_;
  const bool proto_;
  std::optional<Principal> principal_;
  bool checked_ = false;
  absl::Status refusal_;
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
  return new AuthzInterceptor(guard_, info);
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
