#include "crowdgate/types.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace crowdgate {
namespace {

using ::testing::HasSubstr;

TEST(ProvidersTest, KnownProviders) {
  EXPECT_THAT(KnownProviders(), ::testing::ElementsAre("local", "prolific", "mturk", "mturk_sandbox"));
  for (const auto& p : KnownProviders()) EXPECT_TRUE(IsKnownProvider(p)) << p;
  EXPECT_FALSE(IsKnownProvider("mock"));
  EXPECT_FALSE(IsKnownProvider("MTurk"));
  EXPECT_FALSE(IsKnownProvider(""));
}

TEST(ParseWorkerRefTest, BareNameIsLocal) {
  auto r = ParseWorkerRef("alice");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->provider, "local");
  EXPECT_EQ(r->name, "alice");
  EXPECT_EQ(r->ToString(), "local:alice");
}

TEST(ParseWorkerRefTest, ProviderPrefix) {
  for (const std::string provider : {"local", "prolific", "mturk", "mturk_sandbox"}) {
    auto r = ParseWorkerRef(provider + ":A1B2C3");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->provider, provider);
    EXPECT_EQ(r->name, "A1B2C3");
  }
}

TEST(ParseWorkerRefTest, AllowedPunctuation) {
  auto r = ParseWorkerRef("prolific:first.last_1-x@example.org");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->name, "first.last_1-x@example.org");
}

TEST(ParseWorkerRefTest, RoundTripsThroughToString) {
  auto r = ParseWorkerRef("mturk:A1B2");
  ASSERT_TRUE(r.ok());
  auto again = ParseWorkerRef(r->ToString());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *r);
}

TEST(ParseWorkerRefTest, BadCharacterNamesTheProblem) {
  auto r = ParseWorkerRef("x y");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsInvalidArgument());
  EXPECT_EQ(r.status().message(), "worker \"x y\": name may contain only letters, digits and _ . @ -");
}

TEST(ParseWorkerRefTest, RejectsOtherBadCharacters) {
  for (const char* text : {"al/ice", "alice!", "mturk:A:B", "ali\xc3\xa9", "tab\there", "a+b"}) {
    auto r = ParseWorkerRef(text);
    EXPECT_FALSE(r.ok()) << text;
    EXPECT_THAT(r.status().message(), HasSubstr("may contain only")) << text;
  }
}

TEST(ParseWorkerRefTest, ControlCharactersAreEscapedInErrors) {
  auto r = ParseWorkerRef("evil\nINFO forged line");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), ::testing::Not(HasSubstr("\n")));
  EXPECT_THAT(r.status().message(), HasSubstr("evil\\x0aINFO"));
}

TEST(ParseWorkerRefTest, UnknownProviderListsKnownOnes) {
  auto r = ParseWorkerRef("mock:alice");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsInvalidArgument());
  EXPECT_THAT(r.status().message(), HasSubstr("unknown provider \"mock\""));
  EXPECT_THAT(r.status().message(), HasSubstr("local, prolific, mturk, mturk_sandbox"));
}

TEST(ParseWorkerRefTest, ProviderIsCaseSensitive) { EXPECT_FALSE(ParseWorkerRef("MTurk:A1").ok()); }

TEST(ParseWorkerRefTest, EmptyNames) {
  auto empty = ParseWorkerRef("");
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(empty.status().message(), HasSubstr("name is empty"));
  auto empty_after_provider = ParseWorkerRef("mturk:");
  ASSERT_FALSE(empty_after_provider.ok());
  EXPECT_THAT(empty_after_provider.status().message(), HasSubstr("name is empty"));
  EXPECT_FALSE(ParseWorkerRef(":alice").ok());
}

TEST(ParseWorkerRefTest, LengthLimitIs128) {
  EXPECT_TRUE(ParseWorkerRef(std::string(128, 'a')).ok());
  EXPECT_TRUE(ParseWorkerRef("mturk:" + std::string(128, 'a')).ok());
  auto r = ParseWorkerRef(std::string(129, 'a'));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("129 characters"));
  EXPECT_THAT(r.status().message(), HasSubstr("128"));
}

TEST(WorkerRefTest, OrderingIsProviderThenName) {
  WorkerRef a{"local", "zed"};
  WorkerRef b{"mturk", "abe"};
  WorkerRef c{"mturk", "bob"};
  EXPECT_TRUE(a < b);
  EXPECT_TRUE(b < c);
  EXPECT_FALSE(c < b);
  EXPECT_FALSE(a == b);
}

TEST(ValidateQualificationNameTest, AcceptsOrdinaryNames) {
  EXPECT_TRUE(ValidateQualificationName("english").ok());
  EXPECT_TRUE(ValidateQualificationName("sentiment-gold-correct-golds").ok());
  EXPECT_TRUE(ValidateQualificationName("passed screening 2024").ok());  // inner spaces are fine
  EXPECT_TRUE(ValidateQualificationName("x").ok());
  EXPECT_TRUE(ValidateQualificationName(std::string(128, 'q')).ok());
}

TEST(ValidateQualificationNameTest, CountsCharactersNotBytes) {
  std::string name;
  for (int i = 0; i < 128; ++i) name += "\xc3\xa9";  // 128 x U+00E9, 256 bytes
  EXPECT_TRUE(ValidateQualificationName(name).ok());
  EXPECT_FALSE(ValidateQualificationName(name + "\xc3\xa9").ok());
}

TEST(ValidateQualificationNameTest, RejectsBadNames) {
  EXPECT_THAT(ValidateQualificationName("").message(), HasSubstr("empty"));
  EXPECT_THAT(ValidateQualificationName(std::string(129, 'q')).message(), HasSubstr("129 characters"));
  EXPECT_THAT(ValidateQualificationName("a\nb").message(), HasSubstr("control character"));
  EXPECT_THAT(ValidateQualificationName(std::string("a\0b", 3)).message(), HasSubstr("control character"));
  EXPECT_THAT(ValidateQualificationName(" english").message(), HasSubstr("leading or trailing whitespace"));
  EXPECT_THAT(ValidateQualificationName("english ").message(), HasSubstr("leading or trailing whitespace"));
  EXPECT_TRUE(ValidateQualificationName("english ").IsInvalidArgument());
}

TEST(AuditKindNameTest, StableNames) {
  EXPECT_EQ(AuditKindName(AuditEntry::Kind::kGrant), "grant");
  EXPECT_EQ(AuditKindName(AuditEntry::Kind::kChange), "change");
  EXPECT_EQ(AuditKindName(AuditEntry::Kind::kRevoke), "revoke");
  EXPECT_EQ(AuditKindName(AuditEntry::Kind::kQualificationDeleted), "qualification_deleted");
}

TEST(GrantTest, ExpiryIsInclusiveOfTheInstant) {
  Grant g;
  EXPECT_FALSE(g.ExpiredAt(1'000'000));
  g.expires_at = 1'000;
  EXPECT_FALSE(g.ExpiredAt(999));
  EXPECT_TRUE(g.ExpiredAt(1'000));
  EXPECT_TRUE(g.ExpiredAt(1'001));
}

}  // namespace
}  // namespace crowdgate
