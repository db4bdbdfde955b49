"""Prolific's documented request shapes, as the fake Prolific server checks them: enum values and field sets,
the error a handler raises (ApiError: a violation or a refusal), and the validation helpers the API and control
handlers share (required strings and lists, lookups by id, query integers, study fields, completion codes,
filters)."""

import json
import re
from datetime import datetime, timezone

STUDY_ACTIONS = {"PUBLISH", "PAUSE", "START", "STOP", "SCHEDULE_PUBLISH", "CANCEL_PUBLISH"}
SUBMISSION_ACTIONS = {"APPROVE", "COMPLETE", "REJECT", "RETURN", "START", "SCREEN_OUT", "UNREJECT", "UNRETURN"}
SUPPORTED_SUBMISSION_ACTIONS = {"APPROVE", "REJECT"}
REJECTION_CATEGORIES = {"TOO_QUICKLY", "TOO_SLOWLY", "FAILED_INSTRUCTIONS", "INCOMP_LONGITUDINAL", "FAILED_CHECK",
                        "LOW_EFFORT", "MALINGERING", "NO_CODE", "BAD_CODE", "NO_DATA", "UNSUPP_DEVICE", "OTHER"}
SUBMISSION_STATUSES = {"RESERVED", "ACTIVE", "TIMED-OUT", "AWAITING REVIEW", "APPROVED", "PARTIALLY APPROVED",
                       "RETURNED", "REJECTED", "SCREENED OUT", "UNKNOWN"}
# Submissions in these states no longer hold a place in the study.
FREED_STATUSES = {"RETURNED", "TIMED-OUT", "REJECTED"}
CODE_ACTIONS = {"AUTOMATICALLY_APPROVE", "MANUALLY_REVIEW", "ADD_TO_PARTICIPANT_GROUP",
                "REMOVE_FROM_PARTICIPANT_GROUP", "REQUEST_RETURN", "DYNAMIC_PAYMENT", "FIXED_SCREEN_OUT_PAYMENT"}
PROLIFIC_ID_OPTIONS = {"question", "url_parameters", "not_required"}
DEVICES = {"desktop", "tablet", "mobile"}
PLACEHOLDERS = ("{{%PROLIFIC_PID%}}", "{{%STUDY_ID%}}", "{{%SESSION_ID%}}")
GROUP_FILTERS = {"participant_group_allowlist", "participant_group_blocklist"}
AMOUNT_RE = re.compile(r"^[0-9]+(\.[0-9]{1,2})?$")
# Fields a study may be created with (checked: a misspelled key is a violation rather than silently ignored).
STUDY_FIELDS = {"name", "internal_name", "description", "external_study_url", "prolific_id_option",
                "completion_option", "completion_codes", "total_available_places", "estimated_completion_time",
                "maximum_allowed_time", "reward", "device_compatibility", "peripheral_requirements", "filters",
                "filter_set_id", "filter_set_version", "project", "submissions_config", "naivety_distribution_rate",
                "study_labels", "content_warnings", "content_warning_details", "metadata", "is_custom_screening"}
PATCHABLE_WHEN_PUBLISHED = {"internal_name", "total_available_places"}


class ApiError(Exception):
    """An answer other than success. kind: 'violation' (malformed request), 'refusal' (state does not allow it),
    'unauthorized' or 'not_found'."""

    def __init__(self, status, title, detail, kind="violation"):
        super().__init__(detail)
        self.status, self.title, self.detail, self.kind = status, title, detail, kind


def violation(detail, title="Bad request"):
    return ApiError(400, title, detail, "violation")


def refusal(detail, title="Bad request"):
    return ApiError(400, title, detail, "refusal")


def now_iso():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v):
    return (isinstance(v, (int, float))) and not isinstance(v, bool)


def require_object(body):
    if not isinstance(body, dict):
        raise violation("The request body must be a JSON object.")
    return body


def require_str(body, key, non_empty=True):
    if key not in body:
        raise violation(f"{key}: This field is required.")
    v = body[key]
    if not isinstance(v, str):
        raise violation(f"{key}: must be a string, got {type(v).__name__}.")
    if non_empty and not v.strip():
        raise violation(f"{key}: This field may not be blank.")
    return v


def require_str_list(body, key, required=True):
    if key not in body:
        if required:
            raise violation(f"{key}: This field is required.")
        return []
    v = body[key]
    if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
        raise violation(f"{key}: must be a list of non-empty strings.")
    return v


def check_choice(key, value, choices):
    """`value` (of field `key`) must be one of `choices`, as Prolific words it for an enum field."""
    if value not in choices:
        raise violation(f"{key}: \"{value}\" is not a valid choice ({sorted(choices)}).")
    return value


def find(collection, key, what):
    if key not in collection:
        raise ApiError(404, "Not found", f"{what} {key} does not exist.", "not_found")
    return collection[key]


def int_query(query, key, default, lo):
    if key not in query:
        return default
    raw = query[key][-1]
    if not re.fullmatch(r"[0-9]+", raw) or int(raw) < lo:
        raise violation(f"{key}: must be an integer >= {lo}, got {raw!r}.")
    return int(raw)


def check_completion_codes(codes, state):
    if not isinstance(codes, list) or not codes:
        raise violation("completion_codes: specify at least one completion code.")
    seen = set()
    for i, c in enumerate(codes):
        where = f"completion_codes[{i}]"
        if not isinstance(c, dict):
            raise violation(f"{where}: must be an object.")
        code = c.get("code")
        if not isinstance(code, str) or not code:
            raise violation(f"{where}.code: must be a non-empty string.")
        if code in seen:
            raise violation(f"{where}.code: codes must be unique within a study ({code}).")
        seen.add(code)
        if not isinstance(c.get("code_type"), str) or not c["code_type"]:
            raise violation(f"{where}.code_type: must be a non-empty string.")
        if c.get("actor", "participant") not in ("participant", "researcher"):
            raise violation(f"{where}.actor: must be participant or researcher.")
        actions = c.get("actions")
        if not isinstance(actions, list):
            raise violation(f"{where}.actions: must be a list of action objects.")
        names = []
        for j, a in enumerate(actions):
            if not isinstance(a, dict) or a.get("action") not in CODE_ACTIONS:
                raise violation(f"{where}.actions[{j}]: must be an object whose action is one of "
                                f"{sorted(CODE_ACTIONS)}.")
            if a["action"] in ("ADD_TO_PARTICIPANT_GROUP", "REMOVE_FROM_PARTICIPANT_GROUP") and \
                    a.get("participant_group") not in state.groups:
                raise violation(f"{where}.actions[{j}].participant_group: unknown participant group.")
            names.append(a["action"])
        if "AUTOMATICALLY_APPROVE" in names and "MANUALLY_REVIEW" in names:
            raise violation(f"{where}.actions: AUTOMATICALLY_APPROVE and MANUALLY_REVIEW cannot be combined.")


def check_filters(filters, state):
    if not isinstance(filters, list):
        raise violation("filters: must be a list.")
    for i, f in enumerate(filters):
        where = f"filters[{i}]"
        if not isinstance(f, dict) or not isinstance(f.get("filter_id"), str) or not f["filter_id"]:
            raise violation(f"{where}: must be an object with a string filter_id.")
        has_values, has_range = "selected_values" in f, "selected_range" in f
        if has_values == has_range:
            raise violation(f"{where}: exactly one of selected_values or selected_range is required.")
        if has_values:
            vals = f["selected_values"]
            if not isinstance(vals, list) or not vals or not all(isinstance(v, str) for v in vals):
                raise violation(f"{where}.selected_values: must be a non-empty list of strings.")
            if f["filter_id"] in GROUP_FILTERS:
                for v in vals:
                    if v not in state.groups:
                        raise violation(f"{where}.selected_values: unknown participant group {v}.")
            if "weightings" in f and not isinstance(f["weightings"], dict):
                raise violation(f"{where}.weightings: must be an object.")
        else:
            if f["filter_id"] in GROUP_FILTERS:
                raise violation(f"{where}: {f['filter_id']} is a select filter (selected_values).")
            rng = f["selected_range"]
            if not isinstance(rng, dict) or not rng or set(rng) - {"lower", "upper"}:
                raise violation(f"{where}.selected_range: must be an object with lower and/or upper.")
            for k, v in rng.items():
                if not (v is None or is_number(v) or isinstance(v, str)):
                    raise violation(f"{where}.selected_range.{k}: must be a number or an ISO date.")


def check_study_fields(body, state, creating):
    """Type checks shared by create and PATCH; `creating` adds the required-field checks."""
    unknown = set(body) - STUDY_FIELDS
    if unknown:
        raise violation(f"Unknown study field(s): {sorted(unknown)}.")
    if creating:
        for key in ("name", "description", "external_study_url", "prolific_id_option"):
            require_str(body, key)
        for key in ("total_available_places", "estimated_completion_time", "reward", "completion_codes"):
            if key not in body:
                raise violation(f"{key}: This field is required.")
    for key in ("name", "description", "internal_name"):
        if key in body and not isinstance(body[key], str):
            raise violation(f"{key}: must be a string.")
    if "name" in body and not body["name"].strip():
        raise violation("name: This field may not be blank.")
    if "external_study_url" in body:
        url = body["external_study_url"]
        if not isinstance(url, str) or not re.match(r"^https?://[^/\s]+", url):
            raise violation("external_study_url: must be an http(s) URL.")
        missing = [p for p in PLACEHOLDERS if p not in url]
        if missing:
            raise violation(f"external_study_url: missing placeholder(s) {missing}.")
    if "prolific_id_option" in body and body["prolific_id_option"] not in PROLIFIC_ID_OPTIONS:
        raise violation(f"prolific_id_option: must be one of {sorted(PROLIFIC_ID_OPTIONS)}.")
    for key in ("total_available_places", "estimated_completion_time", "reward"):
        if key in body and (not is_int(body[key]) or body[key] <= 0):
            unit = " (in cents)" if key == "reward" else ""
            raise violation(f"{key}: must be a positive integer{unit}, got {json.dumps(body[key])}.")
    if "maximum_allowed_time" in body and (not is_int(body["maximum_allowed_time"]) or
                                           body["maximum_allowed_time"] <= 0):
        raise violation("maximum_allowed_time: must be a positive integer (minutes).")
    if "completion_codes" in body:
        check_completion_codes(body["completion_codes"], state)
    if "filters" in body:
        check_filters(body["filters"], state)
    if "device_compatibility" in body:
        d = body["device_compatibility"]
        if not isinstance(d, list) or any(x not in DEVICES for x in d):
            raise violation(f"device_compatibility: must be a list of {sorted(DEVICES)}.")
    if "project" in body and body["project"] not in state.projects:
        raise violation(f"project: unknown project {body['project']}.")
    if "submissions_config" in body:
        sc = body["submissions_config"]
        if not isinstance(sc, dict) or any(not is_int(v) for v in sc.values()):
            raise violation("submissions_config: must be an object of integers.")
