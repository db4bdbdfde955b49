// prolific::Client against the fake Prolific server: every call is well formed (zero violations), and each
// failure mode is classified as the outbox needs it (throttled/down → retry, slow beyond the timeout → unknown,
// refused → permanent with Prolific's message), without the token in any message.
#include "providers/prolific/prolific_client.hpp"

#include <atomic>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "tests/fakes/prolific_fake_process.hpp"

namespace crowdgate::prolific {
namespace {

using nlohmann::json;
using testing::ProlificFake;

const std::string kReason =
    "Your answers did not follow the instructions at the top of the task page, and the checks in the task "
    "were failed.";

class ProlificClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { fake_ = new ProlificFake(); }
  static void TearDownTestSuite() {
    delete fake_;
    fake_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(fake_->port(), 0);
    fake_->Reset();
  }

  static StudyParams Study() {
    StudyParams p;
    p.name = "Label images";
    p.description = "Label ten images.";
    p.public_url = "https://crowd.example.org";
    p.run_id = "r1";
    p.completed_code = "C8f3a9d2b71e4c05";
    p.screened_out_code = "S2b7c4e91d03fa68";
    p.total_available_places = 3;
    p.estimated_completion_minutes = 10;
    p.task_reward = 0.25;
    p.units_per_session = 4;
    return p;
  }
  // A published study with one submission awaiting review; returns {study id, submission id}.
  std::pair<std::string, std::string> StudyWithSubmission(Client& client, const std::string& pid = "p1") {
    CallResult study = client.CreateStudy(*BuildStudyBody(Study()));
    EXPECT_TRUE(study.ok()) << study.message;
    const std::string sid = study.body["id"];
    EXPECT_TRUE(client.TransitionStudy(sid, "PUBLISH").ok());
    json sub = fake_->Control("POST", "participants", {{"study_id", sid}, {"participant_id", pid}});
    fake_->Control("POST", "submissions/" + sub["id"].get<std::string>() + "/complete",
                   {{"code", "C8f3a9d2b71e4c05"}});
    return {sid, sub["id"]};
  }

  static ProlificFake* fake_;
};
ProlificFake* ProlificClientTest::fake_ = nullptr;

TEST_F(ProlificClientTest, EveryCallSucceedsWithoutViolation) {
  Client client(fake_->Options());
  CallResult me = client.GetMe();
  ASSERT_TRUE(me.ok()) << me.message;
  EXPECT_EQ(me.http_status, 200);
  EXPECT_TRUE(me.body.contains("id"));
  CallResult ws = client.ListWorkspaces();
  ASSERT_TRUE(ws.ok());
  const std::string workspace = ws.body["results"][0]["id"];

  CallResult block = client.CreateParticipantGroup("r1 block list", workspace, {"blocked1"});
  ASSERT_TRUE(block.ok()) << block.message;
  EXPECT_EQ(block.http_status, 201);
  CallResult allow = client.CreateParticipantGroup("r1 allow list", workspace, {});
  ASSERT_TRUE(allow.ok()) << allow.message;
  const std::string allow_id = allow.body["id"], block_id = block.body["id"];
  ASSERT_TRUE(client.AddToGroup(allow_id, {"p1", "p2", "p3"}).ok());
  CallResult removed = client.RemoveFromGroup(allow_id, {"p3"});
  ASSERT_TRUE(removed.ok()) << removed.message;
  EXPECT_EQ(removed.body["results"].size(), 2u);

  StudyParams params = Study();
  params.allowlist_group_ids = {allow_id};
  params.blocklist_group_ids = {block_id};
  params.prolific_specific_qualifications = json::parse(R"([{"filter_id": "age", "selected_range": {"lower": 18}}])");
  CallResult study = client.CreateStudy(*BuildStudyBody(params));
  ASSERT_TRUE(study.ok()) << study.message;
  EXPECT_EQ(study.http_status, 201);
  const std::string sid = study.body["id"];
  EXPECT_EQ(client.GetStudy(sid).body["reward"], 100);
  CallResult published = client.TransitionStudy(sid, "PUBLISH");
  ASSERT_TRUE(published.ok()) << published.message;
  EXPECT_EQ(published.body["status"], "ACTIVE");

  std::vector<std::string> subs;
  for (const char* pid : {"p1", "p2"}) {
    subs.push_back(fake_->Control("POST", "participants", {{"study_id", sid}, {"participant_id", pid}})["id"]);
    fake_->Control("POST", "submissions/" + subs.back() + "/complete", {{"code", "C8f3a9d2b71e4c05"}});
  }
  CallResult page1 = client.ListSubmissions(sid, 1, 1);
  ASSERT_TRUE(page1.ok()) << page1.message;
  ASSERT_EQ(page1.body["results"].size(), 1u);
  EXPECT_EQ(page1.body["results"][0]["status"], "AWAITING REVIEW");
  EXPECT_EQ(client.ListSubmissions(sid, 2, 1).body["results"][0]["id"], subs[1]);
  EXPECT_TRUE(client.ListSubmissions(sid, 3, 1).body["results"].empty());

  CallResult approved = client.TransitionSubmission(subs[0], ApproveBody());
  ASSERT_TRUE(approved.ok()) << approved.message;
  EXPECT_EQ(approved.body["status"], "APPROVED");
  CallResult rejected = client.TransitionSubmission(subs[1], *BuildRejectBody(kReason, "FAILED_INSTRUCTIONS"));
  ASSERT_TRUE(rejected.ok()) << rejected.message;
  EXPECT_EQ(rejected.body["status"], "REJECTED");

  CallResult bonus = client.SetUpBonus(sid, *BuildBonusCsv({{"p1", 50}, {subs[1], 125}}));
  ASSERT_TRUE(bonus.ok()) << bonus.message;
  EXPECT_EQ(bonus.body["amount"], 175);
  CallResult paid = client.PayBonus(bonus.body["id"]);
  ASSERT_TRUE(paid.ok()) << paid.message;
  EXPECT_EQ(paid.http_status, 202);
  EXPECT_TRUE(paid.body.is_null());  // 202 with an empty body is fine
  CallResult sub = client.GetSubmission(subs[0]);
  ASSERT_TRUE(sub.ok());
  EXPECT_EQ(sub.body["bonus_payments"], json::array({50}));
  EXPECT_EQ(client.TransitionStudy(sid, "STOP").body["status"], "COMPLETED");

  EXPECT_EQ(fake_->Violations(), json::array());
  const json state = fake_->State();
  EXPECT_EQ(state["groups"][allow_id]["members"], json::array({"p1", "p2"}));
  EXPECT_EQ(state["payments"].size(), 2u);
}

TEST_F(ProlificClientTest, ThrottledIsRetryWithRetryAfterAndNoEffect) {
  Client client(fake_->Options());
  fake_->Configure({{"throttle_share", 1.0}});
  CallResult r = client.CreateStudy(*BuildStudyBody(Study()));
  fake_->Configure({{"throttle_share", 0.0}});
  EXPECT_EQ(r.outcome, CallOutcome::kRetry);
  EXPECT_EQ(r.http_status, 429);
  EXPECT_EQ(r.retry_after_s, 1);
  EXPECT_NE(r.message.find("429"), std::string::npos);
  EXPECT_TRUE(fake_->State()["studies"].empty());
}

TEST_F(ProlificClientTest, ServerErrorIsRetry) {
  Client client(fake_->Options());
  fake_->Configure({{"fail_share", 1.0}});
  CallResult r = client.GetMe();
  fake_->Configure({{"fail_share", 0.0}});
  EXPECT_EQ(r.outcome, CallOutcome::kRetry);
  EXPECT_GE(r.http_status, 500);
}

TEST_F(ProlificClientTest, DownIsRetryAndComesBack) {
  Client client(fake_->Options());
  ASSERT_TRUE(client.GetMe().ok());  // a kept-alive connection exists and is dropped by the outage
  fake_->Configure({{"down_for_s", 1.0}});
  CallResult r = client.GetMe();
  EXPECT_EQ(r.outcome, CallOutcome::kRetry) << r.message;
  EXPECT_EQ(r.http_status, 0);
  EXPECT_NE(r.message.find("could not reach"), std::string::npos) << r.message;
  std::this_thread::sleep_for(std::chrono::milliseconds(1300));
  CallResult back = client.GetMe();
  EXPECT_TRUE(back.ok()) << back.message;
}

TEST_F(ProlificClientTest, Down503IsRetry) {
  Client client(fake_->Options());
  fake_->Configure({{"down_for_s", 0.5}, {"down_mode", "503"}});
  CallResult r = client.GetMe();
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  fake_->Configure({{"down_mode", "refuse"}});
  EXPECT_EQ(r.outcome, CallOutcome::kRetry);
  EXPECT_EQ(r.http_status, 503);
}

TEST_F(ProlificClientTest, NobodyListeningIsRetry) {
  Client client({"http://127.0.0.1:1", "tok", 2000});
  CallResult r = client.GetMe();
  EXPECT_EQ(r.outcome, CallOutcome::kRetry) << r.message;
}

TEST_F(ProlificClientTest, SlowBeyondTimeoutIsUnknownAndTookEffect) {
  Client setup(fake_->Options());
  auto [sid, sub] = StudyWithSubmission(setup);
  CallResult bonus = setup.SetUpBonus(sid, *BuildBonusCsv({{"p1", 100}}));
  ASSERT_TRUE(bonus.ok()) << bonus.message;
  fake_->Configure({{"slow_paths", {{"/pay/$", 1.5}}}});
  Client hasty(fake_->Options(/*timeout_ms=*/300));
  const auto start = std::chrono::steady_clock::now();
  CallResult r = hasty.PayBonus(bonus.body["id"]);
  const auto waited = std::chrono::steady_clock::now() - start;
  fake_->Configure({{"slow_paths", json::object()}});
  EXPECT_EQ(r.outcome, CallOutcome::kUnknown) << r.message;
  EXPECT_LT(waited, std::chrono::milliseconds(1200));  // the call is bounded by its timeout
  // It did take effect: the reconciliation reads the submission, never pays again.
  CallResult read = setup.GetSubmission(sub);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read.body["bonus_payments"], json::array({100}));
  std::this_thread::sleep_for(std::chrono::milliseconds(1300));  // let the slow answer drain
}

// A pay call whose answer is lost (the connection closes after the payment) must not be sent again:
// libcurl re-sends a request on a kept-alive connection that closes before answering, which paid twice.
TEST_F(ProlificClientTest, LostPayAnswerIsUnknownAndPaidOnce) {
  Client client(fake_->Options());
  auto [sid, sub] = StudyWithSubmission(client);
  CallResult bonus = client.SetUpBonus(sid, *BuildBonusCsv({{"p1", 100}}));  // leaves a kept-alive connection
  ASSERT_TRUE(bonus.ok()) << bonus.message;
  fake_->Configure({{"drop_paths", {"/pay/$"}}});
  CallResult r = client.PayBonus(bonus.body["id"]);
  fake_->Configure({{"drop_paths", json::array()}});
  EXPECT_EQ(r.outcome, CallOutcome::kUnknown) << r.message;
  const json state = fake_->State();
  EXPECT_EQ(state["bonus_setups"][bonus.body["id"].get<std::string>()]["times_paid"], 1);
  EXPECT_EQ(state["payments"].size(), 1u);
}

// The same for an approval: re-sent, it would be refused (no longer AWAITING REVIEW) although it was done.
TEST_F(ProlificClientTest, LostApprovalAnswerIsUnknownNotRefused) {
  Client client(fake_->Options());
  auto [sid, sub] = StudyWithSubmission(client);
  ASSERT_TRUE(client.GetSubmission(sub).ok());  // leaves a kept-alive connection
  fake_->Configure({{"drop_paths", {"/transition/$"}}});
  CallResult r = client.TransitionSubmission(sub, ApproveBody());
  fake_->Configure({{"drop_paths", json::array()}});
  EXPECT_EQ(r.outcome, CallOutcome::kUnknown) << r.message;
  EXPECT_EQ(fake_->State()["submissions"][sub]["status"], "APPROVED");
  EXPECT_TRUE(fake_->Control("GET", "refusals")["refusals"].empty());
}

TEST_F(ProlificClientTest, MalformedCallIsPermanentWithProlificsMessage) {
  Client client(fake_->Options());
  auto [sid, sub] = StudyWithSubmission(client);
  CallResult r = client.TransitionSubmission(
      sub, {{"action", "REJECT"}, {"message", "too short"}, {"rejection_category", "OTHER"}});
  EXPECT_EQ(r.outcome, CallOutcome::kPermanent);
  EXPECT_EQ(r.http_status, 400);
  EXPECT_NE(r.message.find("at least 100 characters"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("/transition/"), std::string::npos) << r.message;
  EXPECT_EQ(fake_->Violations().size(), 1u);
  // A well-formed call the state refuses is permanent too, and not a violation.
  ASSERT_TRUE(client.TransitionSubmission(sub, ApproveBody()).ok());
  CallResult again = client.TransitionSubmission(sub, ApproveBody());
  EXPECT_EQ(again.outcome, CallOutcome::kPermanent);
  EXPECT_NE(again.message.find("AWAITING REVIEW"), std::string::npos) << again.message;
  EXPECT_EQ(fake_->Violations().size(), 1u);
  // A missing trailing slash is caught by the fake.
  EXPECT_EQ(client.Request("GET", "/api/v1/users/me").outcome, CallOutcome::kPermanent);
}

TEST_F(ProlificClientTest, TokenNeverInAMessage) {
  const std::string token = ProlificFake::kToken;
  std::vector<CallResult> results;
  Client client(fake_->Options(/*timeout_ms=*/300));
  // A server that echoes the token back (here: as an unknown field name the fake names in its error).
  json echo = *BuildStudyBody(Study());
  echo[token] = 1;
  results.push_back(client.CreateStudy(echo));
  ASSERT_EQ(results.back().outcome, CallOutcome::kPermanent);
  EXPECT_NE(results.back().message.find("[redacted]"), std::string::npos) << results.back().message;
  Client wrong({fake_->base_url(), token + "-wrong", 2000});
  results.push_back(wrong.GetMe());
  EXPECT_EQ(results.back().http_status, 401);
  fake_->Configure({{"throttle_share", 1.0}});
  results.push_back(client.GetMe());
  fake_->Configure({{"throttle_share", 0.0}, {"slow_paths", {{"users/me", 1.0}}}});
  results.push_back(client.GetMe());
  EXPECT_EQ(results.back().outcome, CallOutcome::kUnknown);
  fake_->Configure({{"slow_paths", json::object()}});
  results.push_back(Client({"http://127.0.0.1:1", token, 1000}).GetMe());
  results.push_back(Client({"http://" + token + ".invalid", token, 2000}).GetMe());
  for (const CallResult& r : results) {
    EXPECT_FALSE(r.message.empty());
    EXPECT_EQ(r.message.find(token), std::string::npos) << r.message;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
}

// Four threads share one client and add 2,000 participants to a group while the fake throttles 10 % of calls;
// retrying each kRetry delivers every change exactly once. Prints the call rate (the fake is the bottleneck).
TEST_F(ProlificClientTest, ConcurrentCallsShareTheClient) {
  Client client(fake_->Options());
  const std::string workspace = client.ListWorkspaces().body["results"][0]["id"];
  const std::string group = client.CreateParticipantGroup("g", workspace, {}).body["id"];
  fake_->Configure({{"throttle_share", 0.1}, {"seed", 3}});
  constexpr int kThreads = 4, kEach = 500;
  std::atomic<int> calls{0}, retries{0}, other{0};
  std::vector<std::thread> threads;
  const auto start = std::chrono::steady_clock::now();
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const std::string pid = "p" + std::to_string(t) + "_" + std::to_string(i);
        for (;;) {
          ++calls;
          CallResult r = client.AddToGroup(group, {pid});
          if (r.ok()) break;
          if (r.outcome != CallOutcome::kRetry) {
            ++other;
            break;
          }
          ++retries;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fake_->Configure({{"throttle_share", 0.0}});
  EXPECT_EQ(other.load(), 0);
  EXPECT_GT(retries.load(), kThreads * kEach / 20);  // about 10 % were throttled
  EXPECT_EQ(fake_->State()["groups"][group]["members"].size(), static_cast<size_t>(kThreads * kEach));
  std::printf("%d calls (%d throttled) in %.2f s: %.0f calls/s against the fake\n", calls.load(), retries.load(),
              secs, calls.load() / secs);
}

}  // namespace
}  // namespace crowdgate::prolific
