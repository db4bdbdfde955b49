#include "server/worker_pages.hpp"

#include "server/http_util.hpp"
#include "server/task_server.hpp"

namespace crowdgate {

namespace {

std::string PageHead(const std::string& title) {
  return "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>" + HtmlEscape(title) +
         "</title><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
         "<style>body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}"
         "button{font-size:1rem;padding:.5rem 1.2rem}#cg-status{margin-top:1rem;font-weight:bold}</style>"
         "</head><body>\n";
}

// Posts the form's fields as JSON with the agent's token, then loads the next unit.
std::string SubmitScript(const WorkResponse& work) {
  const nlohmann::json agent = {{"agent_id", work.agent_id}, {"token", work.token}};
  std::string agent_json = agent.dump();
  // Keep "</script>" out of the inline script whatever the ids contain.
  for (size_t p = 0; (p = agent_json.find("</", p)) != std::string::npos; p += 3) agent_json.replace(p, 2, "<\\/");
  return "<script>\nconst CG = " + agent_json + ";\n" +
         R"JS(document.getElementById('cg-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const data = {};
  for (const [k, v] of new FormData(ev.target).entries()) {
    if (k in data) { data[k] = [].concat(data[k], v); } else { data[k] = v; }
  }
  const status = document.getElementById('cg-status');
  const res = await fetch('/api/v1/agents/' + encodeURIComponent(CG.agent_id) + '/submit', {
    method: 'POST', headers: {'Content-Type': 'application/json', 'Authorization': 'Bearer ' + CG.token},
    body: JSON.stringify({data})});
  const body = await res.json().catch(() => ({}));
  if (res.ok) { status.textContent = 'Submitted (' + body.outcome + '). Loading the next task...';
                setTimeout(() => location.reload(), 800); }
  else { status.textContent = 'Error: ' + ((body.error && body.error.message) || res.status); }
});
</script>
)JS";
}

std::string GenericOnboarding(const RunView& run, const nlohmann::json& data) {
  // Shows the onboarding data and one text field per answer field (names only).
  std::string html = "<h1>Onboarding</h1>\n<p>Please complete this short qualification task first.</p>\n<dl>";
  for (const auto& [k, v] : data.items()) {
    html += "<dt>" + HtmlEscape(k) + "</dt><dd>" + HtmlEscape(v.is_string() ? v.get<std::string>() : v.dump()) +
            "</dd>";
  }
  html += "</dl>\n";
  for (const auto& [k, v] : run.config->blueprint.onboarding_answer.items()) {
    html += "<p><label>" + HtmlEscape(k) + " <input name=\"" + HtmlEscape(k) + "\" required></label></p>\n";
  }
  return html;
}

}  // namespace

std::string RenderWorkPage(const RunView& run, const WorkResponse& work) {
  const bool onboarding = work.outcome == "onboarding";
  std::string body;
  if (onboarding) {
    body = run.onboarding_html.empty() ? GenericOnboarding(run, work.data) : FillTemplate(run.onboarding_html, work.data);
  } else {
    body = FillTemplate(run.task_html, work.data);
  }
  return PageHead(run.config->task.task_title) + "<form id=\"cg-form\">\n" + body +
         "\n<p><button type=\"submit\">Submit</button></p>\n</form>\n<div id=\"cg-status\"></div>\n" +
         SubmitScript(work) + "</body></html>\n";
}

std::string RenderMessagePage(const std::string& title, const std::string& message) {
  return PageHead(title) + "<h1>" + HtmlEscape(title) + "</h1>\n<p>" + HtmlEscape(message) + "</p>\n</body></html>\n";
}

}  // namespace crowdgate
