#include "providers/prolific/prolific_wire.hpp"

#include <gtest/gtest.h>

#include "providers/prolific/prolific_client.hpp"

namespace crowdgate::prolific {
namespace {

using nlohmann::json;

StudyParams Params() {
  StudyParams p;
  p.name = "Label images";
  p.description = "Label ten images.";
  p.public_url = "https://crowd.example.org/";
  p.run_id = "r1";
  p.completed_code = "C8f3a9d2b71e4c05";
  p.screened_out_code = "S2b7c4e91d03fa68";
  p.total_available_places = 40;
  p.estimated_completion_minutes = 12;
  p.task_reward = 0.3;
  p.units_per_session = 5;
  return p;
}

TEST(ProlificWire, ExternalStudyUrlCarriesTheThreePlaceholders) {
  EXPECT_EQ(ExternalStudyUrl("https://crowd.example.org/", "r1"),
            "https://crowd.example.org/runs/r1?PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}"
            "&SESSION_ID={{%SESSION_ID%}}");
  EXPECT_EQ(ExternalStudyUrl("http://h:8080", "run 1/x").substr(0, 30), "http://h:8080/runs/run%201%2Fx");
}

TEST(ProlificWire, StudyBody) {
  auto body = BuildStudyBody(Params());
  ASSERT_TRUE(body.ok()) << body.status().ToString();
  const json& b = *body;
  EXPECT_EQ(b["name"], "Label images");
  EXPECT_EQ(b["description"], "Label ten images.");
  EXPECT_EQ(b["external_study_url"], ExternalStudyUrl("https://crowd.example.org", "r1"));
  EXPECT_EQ(b["prolific_id_option"], "url_parameters");
  EXPECT_EQ(b["total_available_places"], 40);
  EXPECT_EQ(b["estimated_completion_time"], 12);
  EXPECT_EQ(b["reward"], 150);  // 0.30 × 5 units = 150 cents
  ASSERT_EQ(b["completion_codes"].size(), 2u);
  EXPECT_EQ(b["completion_codes"][0], json::parse(R"({"code": "C8f3a9d2b71e4c05", "code_type": "COMPLETED",
                                                      "actions": [{"action": "MANUALLY_REVIEW"}]})"));
  EXPECT_EQ(b["completion_codes"][1]["code"], "S2b7c4e91d03fa68");
  EXPECT_EQ(b["completion_codes"][1]["code_type"], "SCREENED_OUT");
  EXPECT_EQ(b["filters"], json::array());
  EXPECT_FALSE(b.contains("project"));
  EXPECT_FALSE(b.contains("internal_name"));
}

TEST(ProlificWire, StudyFiltersPassQualificationsThroughAndAddGroups) {
  StudyParams p = Params();
  p.prolific_specific_qualifications = json::parse(
      R"([{"filter_id": "age", "selected_range": {"lower": 18, "upper": 65}},
          {"filter_id": "current-country-of-residence", "selected_values": ["1"], "weightings": {"1": 1}}])");
  p.allowlist_group_ids = {"g-allow"};
  p.blocklist_group_ids = {"g-block1", "g-block2"};
  p.project = "proj1";
  p.internal_name = "run r1";
  auto body = BuildStudyBody(p);
  ASSERT_TRUE(body.ok());
  const json& f = (*body)["filters"];
  ASSERT_EQ(f.size(), 4u);
  EXPECT_EQ(f[0], p.prolific_specific_qualifications[0]);
  EXPECT_EQ(f[1], p.prolific_specific_qualifications[1]);
  EXPECT_EQ(f[2], json::parse(R"({"filter_id": "participant_group_allowlist", "selected_values": ["g-allow"]})"));
  EXPECT_EQ(f[3], json::parse(
                      R"({"filter_id": "participant_group_blocklist", "selected_values": ["g-block1", "g-block2"]})"));
  EXPECT_EQ((*body)["project"], "proj1");
  EXPECT_EQ((*body)["internal_name"], "run r1");
}

TEST(ProlificWire, StudyBodyRefusesBadValues) {
  auto with = [](auto change) {
    StudyParams p = Params();
    change(p);
    return BuildStudyBody(p).status();
  };
  EXPECT_TRUE(with([](StudyParams& p) { p.total_available_places = 0; }).IsInvalidArgument());
  EXPECT_TRUE(with([](StudyParams& p) { p.estimated_completion_minutes = 0; }).IsInvalidArgument());
  EXPECT_TRUE(with([](StudyParams& p) { p.task_reward = 0; }).IsInvalidArgument());
  EXPECT_TRUE(with([](StudyParams& p) { p.description = ""; }).IsInvalidArgument());
  EXPECT_TRUE(with([](StudyParams& p) { p.public_url = "crowd.example.org"; }).IsInvalidArgument());
  EXPECT_TRUE(with([](StudyParams& p) { p.screened_out_code = p.completed_code; }).IsInvalidArgument());
  EXPECT_TRUE(with([](StudyParams& p) { p.completed_code = ""; }).IsInvalidArgument());
  EXPECT_TRUE(with([](StudyParams& p) { p.completed_code = "has space"; }).IsInvalidArgument());
  EXPECT_TRUE(with([](StudyParams& p) { p.prolific_specific_qualifications = json::object(); }).IsInvalidArgument());
  EXPECT_TRUE(with([](StudyParams& p) { p.screened_out_action = "AUTOMATICALLY_APPROVE"; }).IsInvalidArgument());
}

TEST(ProlificWire, RewardCentsRoundsAndNeverTruncatesToZero) {
  EXPECT_EQ(*RewardCents(0.3, 1), 30);
  EXPECT_EQ(*RewardCents(0.3, 3), 90);        // 0.3*3 is 0.8999999… in binary
  EXPECT_EQ(*RewardCents(0.145, 1), 15);      // half up on the decimal the user wrote
  EXPECT_EQ(*RewardCents(0.004, 1), 1);       // rounds to 0, but a positive reward is never free
  EXPECT_EQ(*RewardCents(1.999, 2), 400);
  EXPECT_TRUE(RewardCents(-1, 1).status().IsInvalidArgument());
  EXPECT_TRUE(RewardCents(0.5, 0).status().IsInvalidArgument());
}

TEST(ProlificWire, BonusCsvUsesTwoDecimalPlaces) {
  auto csv = BuildBonusCsv({{"p1", 50}, {"5f0123", 425}, {"p3", 3000}, {"p4", 7}});
  ASSERT_TRUE(csv.ok());
  EXPECT_EQ(*csv, "p1,0.50\n5f0123,4.25\np3,30.00\np4,0.07\n");
  EXPECT_TRUE(BuildBonusCsv({}).status().IsInvalidArgument());
  EXPECT_TRUE(BuildBonusCsv({{"p1", 0}}).status().IsInvalidArgument());
  EXPECT_TRUE(BuildBonusCsv({{"p,1", 10}}).status().IsInvalidArgument());
  EXPECT_TRUE(BuildBonusCsv({{"p\n1", 10}}).status().IsInvalidArgument());
  EXPECT_EQ(*AmountToCents(0.5), 50);
  EXPECT_EQ(*AmountToCents(4.255), 426);
  EXPECT_TRUE(AmountToCents(0.001).status().IsInvalidArgument());
}

TEST(ProlificWire, RejectBodyNeedsALongMessageAndAKnownCategory) {
  const std::string reason(100, 'x');
  auto body = BuildRejectBody(reason, "LOW_EFFORT");
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(*body, (json{{"action", "REJECT"}, {"message", reason}, {"rejection_category", "LOW_EFFORT"}}));
  EXPECT_TRUE((*body)["rejection_category"].is_string());  // a string, never ["LOW_EFFORT"]
  EXPECT_TRUE(BuildRejectBody(std::string(99, 'x'), "OTHER").status().IsInvalidArgument());
  EXPECT_TRUE(BuildRejectBody(reason, "other").status().IsInvalidArgument());
  EXPECT_EQ(ApproveBody(), (json{{"action", "APPROVE"}}));
  EXPECT_EQ(RejectionCategories().size(), 12u);
}

TEST(ProlificWire, CompletionRedirect) {
  EXPECT_EQ(CompletionRedirectUrl("C8f3a9d2b71e4c05"), "https://app.prolific.com/submissions/complete?cc=C8f3a9d2b71e4c05");
  EXPECT_EQ(CompletionRedirectUrl("a&b"), "https://app.prolific.com/submissions/complete?cc=a%26b");
}

// ---- classification helpers (pure) ----

TEST(ProlificClassify, StatusCodes) {
  EXPECT_EQ(OutcomeForStatus(200), CallOutcome::kOk);
  EXPECT_EQ(OutcomeForStatus(201), CallOutcome::kOk);
  EXPECT_EQ(OutcomeForStatus(202), CallOutcome::kOk);
  EXPECT_EQ(OutcomeForStatus(204), CallOutcome::kOk);
  EXPECT_EQ(OutcomeForStatus(429), CallOutcome::kRetry);
  EXPECT_EQ(OutcomeForStatus(500), CallOutcome::kRetry);
  EXPECT_EQ(OutcomeForStatus(502), CallOutcome::kRetry);
  EXPECT_EQ(OutcomeForStatus(503), CallOutcome::kRetry);
  EXPECT_EQ(OutcomeForStatus(400), CallOutcome::kPermanent);
  EXPECT_EQ(OutcomeForStatus(401), CallOutcome::kPermanent);
  EXPECT_EQ(OutcomeForStatus(404), CallOutcome::kPermanent);
  EXPECT_EQ(OutcomeForStatus(409), CallOutcome::kPermanent);
  EXPECT_EQ(OutcomeForStatus(302), CallOutcome::kPermanent);
}

TEST(ProlificClassify, RetryAfter) {
  EXPECT_EQ(ParseRetryAfter(" 3 ", 0), 3);
  EXPECT_EQ(ParseRetryAfter("0", 0), 0);
  EXPECT_EQ(ParseRetryAfter("", 0), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("soon", 0), std::nullopt);
  // Sun, 06 Nov 1994 08:49:37 GMT is 784111777.
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT", 784111777 - 20), 20);
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT", 784111777 + 20), 0);
}

TEST(ProlificClassify, ErrorText) {
  EXPECT_EQ(ErrorText(json::parse(R"({"error": {"status": 400, "error_code": 140400, "title": "Bad request",
                                     "detail": "message: too short"}})")),
            "Bad request: message: too short");
  EXPECT_EQ(ErrorText(json::parse(R"({"title": "Bad request", "detail": {"reward": ["must be > 0"]}})")),
            R"(Bad request: {"reward":["must be > 0"]})");
  EXPECT_EQ(ErrorText(json::parse(R"({"detail": "Invalid token."})")), "Invalid token.");
  EXPECT_EQ(ErrorText(json()), "");
}

TEST(ProlificClientOptions, FromEnv) {
  unsetenv("PROLIFIC_API_TOKEN");
  unsetenv("CROWDGATE_PROLIFIC_URL");
  auto missing = ClientOptionsFromEnv();
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(missing.status().IsInvalidArgument());
  EXPECT_NE(missing.status().message().find("PROLIFIC_API_TOKEN"), std::string::npos);
  setenv("PROLIFIC_API_TOKEN", "", 1);
  EXPECT_FALSE(ClientOptionsFromEnv().ok());
  setenv("PROLIFIC_API_TOKEN", "tok123", 1);
  auto defaults = ClientOptionsFromEnv();
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->token, "tok123");
  EXPECT_EQ(defaults->base_url, "https://api.prolific.com");
  setenv("CROWDGATE_PROLIFIC_URL", "http://127.0.0.1:9999", 1);
  EXPECT_EQ(ClientOptionsFromEnv()->base_url, "http://127.0.0.1:9999");
  setenv("CROWDGATE_PROLIFIC_URL", "ftp://x", 1);
  auto bad = ClientOptionsFromEnv();
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message().find("tok123"), std::string::npos);
  unsetenv("PROLIFIC_API_TOKEN");
  unsetenv("CROWDGATE_PROLIFIC_URL");
}

}  // namespace
}  // namespace crowdgate::prolific
