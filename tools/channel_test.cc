#include "tools/channel.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>

namespace caseledger {
namespace {

std::string TempFile(const std::string& name, const std::string& text) {
  const char* dir = std::getenv("TEST_TMPDIR");
  std::string path = std::string(dir != nullptr ? dir : "/tmp") + "/" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(ChannelTest, WithoutCaIsPlaintext) {
  ChannelOptions o;
  o.target = "127.0.0.1:1";
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = NewChannel(o);
  ASSERT_TRUE(channel.ok()) << channel.status();
  EXPECT_NE(*channel, nullptr);
}

TEST(ChannelTest, ClientCertificateWithoutCaIsRefused) {
  ChannelOptions o;
  o.target = "127.0.0.1:1";
  o.cert_file = "client.pem";
  o.key_file = "client.key";
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = NewChannel(o);
  EXPECT_EQ(channel.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(channel.status().message(),
            "--cert and --key_file: given without --ca, want --ca too (mutual TLS)");
}

TEST(ChannelTest, CertificateWithoutKeyIsRefused) {
  ChannelOptions o;
  o.target = "127.0.0.1:1";
  o.ca_file = TempFile("ca.pem", "not checked here");
  o.cert_file = TempFile("client.pem", "not checked here");
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = NewChannel(o);
  EXPECT_EQ(channel.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(channel.status().message(),
            "--cert and --key_file: got only --cert, want both or neither");
}

TEST(ChannelTest, UnreadableFileNamesItsFlag) {
  ChannelOptions o;
  o.target = "127.0.0.1:1";
  o.ca_file = TempFile("ca.pem", "x");
  o.cert_file = TempFile("client.pem", "x");
  o.key_file = "/nonexistent/client.key";
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = NewChannel(o);
  EXPECT_EQ(channel.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(channel.status().message(),
            "--key_file: cannot read \"/nonexistent/client.key\", want a PEM file");
}

}  // namespace
}  // namespace caseledger
