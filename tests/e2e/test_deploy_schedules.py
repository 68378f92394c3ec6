"""`sluice deploy` and EventBridge schedules, end to end against moto_server on loopback:
per-stage rules STACK-STAGE-SCHEDULE with their expression, state and description, one
target naming the stage's alias (or a pinned version) with the constant input, the
lambda:AddPermission for events.amazonaws.com; idempotence, edits and removal."""
import json
import shutil
import subprocess

import pytest

from conftest import BIN, FIXTURES
from test_deploy import ACCOUNT, FaultProxy, credentials_env, moto, mutating, ok  # noqa: F401 (moto: the fixture)

REGION = "us-east-1"


@pytest.fixture
def app(tmp_path):
    d = tmp_path / "clock"
    shutil.copytree(FIXTURES / "deploy-schedules", d)
    (tmp_path / "home").mkdir()
    return d


def deploy(moto, app, stage, *extra, endpoint=None):
    return subprocess.run([str(BIN), "deploy", "--stage", stage, *extra, str(app / "sluice.yaml"),
                           "--endpoint-url", endpoint or moto.url], capture_output=True, text=True, timeout=180,
                          stdin=subprocess.DEVNULL, env=credentials_env(app.parent / "home"))


def rule_arn(name):
    return f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{name}"


def fn_arn(qualifier):
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:clock-tick:{qualifier}"


def targets(events, rule):
    return events.list_targets_by_rule(Rule=rule)["Targets"]


def events_permissions(lam, qualifier):
    policy = json.loads(lam.get_policy(FunctionName="clock-tick", Qualifier=qualifier)["Policy"])
    return {s["Condition"]["ArnLike"]["AWS:SourceArn"] for s in policy["Statement"]
            if s["Principal"] == {"Service": "events.amazonaws.com"}}


def record(moto, stage):
    s3 = moto.client("s3", region=REGION)
    return json.loads(s3.get_object(Bucket=f"sluice-clock-{ACCOUNT}-{REGION}",
                                    Key=f"state/{stage}/current.json")["Body"].read())


def test_schedules_become_rules_per_stage_idempotent_edited_and_removed(moto, app):
    p = ok(deploy(moto, app, "sandbox"))
    assert "+ create schedule rule clock-sandbox-nightly (cron(0 3 * * ? *))" in p.stderr
    assert "+ create schedule target clock-sandbox-nightly (invokes clock-tick:sandbox)" in p.stderr
    events, lam = moto.client("events", region=REGION), moto.client("lambda", region=REGION)

    nightly = events.describe_rule(Name="clock-sandbox-nightly")
    assert nightly["ScheduleExpression"] == "cron(0 3 * * ? *)"
    assert nightly["State"] == "ENABLED" and nightly["Description"] == "nightly refresh"
    [t] = targets(events, "clock-sandbox-nightly")
    assert t["Id"] == "sluice.clock.sandbox" and t["Arn"] == fn_arn("sandbox")
    assert json.loads(t["Input"]) == {"refresh": True}
    five = events.describe_rule(Name="clock-sandbox-every-five")
    assert five["ScheduleExpression"] == "rate(5 minutes)" and five["State"] == "ENABLED"
    [t] = targets(events, "clock-sandbox-every-five")
    assert t["Arn"] == fn_arn("sandbox") and "Input" not in t
    # A disabled schedule is a DISABLED rule; a pinned version is targeted as it is.
    pinned = events.describe_rule(Name="clock-sandbox-pinned")
    assert pinned["State"] == "DISABLED"
    assert [t["Arn"] for t in targets(events, "clock-sandbox-pinned")] == [fn_arn("1")]

    # Permissions for EventBridge, scoped to each rule, on the qualifier the target names.
    # (moto keeps one policy per version, and alias sandbox is version 1: the sets overlap.)
    assert events_permissions(lam, "sandbox") >= {rule_arn("clock-sandbox-nightly"),
                                                  rule_arn("clock-sandbox-every-five")}
    assert rule_arn("clock-sandbox-pinned") in events_permissions(lam, "1")
    rec = record(moto, "sandbox")
    assert rec["schedules"]["nightly"]["rule"] == "clock-sandbox-nightly"
    assert rec["schedules"]["nightly"]["target"] == fn_arn("sandbox")

    # Nothing changed: no mutating call at all (EventBridge reads are POSTs too).
    moto.start_recording()
    p = ok(deploy(moto, app, "sandbox"))
    calls = moto.stop_recording()
    assert "nothing to change" in p.stderr
    assert [c for c in calls if mutating(c)] == [], p.stderr
    assert any("AWSEvents.ListRules" in json.dumps(c.get("headers")) for c in calls)

    # Another stage: its own rules, targeting its own alias; sandbox's left alone.
    ok(deploy(moto, app, "staging"))
    [t] = targets(events, "clock-staging-nightly")
    assert t["Arn"] == fn_arn("staging") and t["Id"] == "sluice.clock.staging"
    assert events_permissions(lam, "staging") >= {rule_arn("clock-staging-nightly"),
                                                  rule_arn("clock-staging-every-five")}
    assert targets(events, "clock-sandbox-nightly")[0]["Arn"] == fn_arn("sandbox")

    # Promotion moves aliases only: the rules already point at them.
    moto.start_recording()
    ok(deploy(moto, app, "staging", "--promote-from", "sandbox"))
    calls = moto.stop_recording()
    assert [c for c in calls if mutating(c) and "AWSEvents" in json.dumps(c.get("headers"))] == []

    # Edit: a new expression and input, one schedule removed, one re-enabled.
    text = (app / "sluice.yaml").read_text()
    text = text.replace("cron(0 3 * * ? *)", "cron(30 4 * * ? *)").replace("{refresh: true}", "{refresh: false}")
    text = text.replace("  every-five:\n    function: tick\n    expression: rate(5 minutes)\n", "")
    text = text.replace("    enabled: false\n", "")
    (app / "sluice.yaml").write_text(text)
    p = ok(deploy(moto, app, "sandbox", "--dry-run"))
    assert "~ update schedule rule clock-sandbox-nightly (cron(0 3 * * ? *) -> cron(30 4 * * ? *))" in p.stderr
    assert "~ update schedule target clock-sandbox-nightly (input)" in p.stderr
    assert "~ update schedule rule clock-sandbox-pinned (DISABLED -> ENABLED)" in p.stderr
    assert ("- remove schedule rule clock-sandbox-every-five (no longer in the stack; it would keep invoking "
            f"{fn_arn('sandbox')})") in p.stderr
    assert events.describe_rule(Name="clock-sandbox-every-five")["State"] == "ENABLED"  # dry run
    ok(deploy(moto, app, "sandbox"))
    assert events.describe_rule(Name="clock-sandbox-nightly")["ScheduleExpression"] == "cron(30 4 * * ? *)"
    assert json.loads(targets(events, "clock-sandbox-nightly")[0]["Input"]) == {"refresh": False}
    assert events.describe_rule(Name="clock-sandbox-pinned")["State"] == "ENABLED"
    with pytest.raises(events.exceptions.ResourceNotFoundException):
        events.describe_rule(Name="clock-sandbox-every-five")
    assert rule_arn("clock-sandbox-nightly") in events_permissions(lam, "sandbox")
    assert rule_arn("clock-sandbox-every-five") not in events_permissions(lam, "sandbox")
    # Staging's copy of the removed schedule is staging's business: its next deploy removes it.
    assert events.describe_rule(Name="clock-staging-every-five")["State"] == "ENABLED"
    assert "every-five" not in record(moto, "sandbox")["schedules"]

    moto.start_recording()
    p = ok(deploy(moto, app, "sandbox"))
    assert [c for c in moto.stop_recording() if mutating(c)] == [], p.stderr


def test_rules_that_are_not_this_stages_are_left_alone(moto, app):
    """A rule with the stage's prefix but without sluice's target for this stack and stage
    (someone else's) is never deleted."""
    events = moto.client("events", region=REGION)
    events.put_rule(Name="clock-sandbox-hand-made", ScheduleExpression="rate(1 day)")
    events.put_targets(Rule="clock-sandbox-hand-made",
                       Targets=[{"Id": "mine", "Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:q"}])
    p = ok(deploy(moto, app, "sandbox"))
    assert "hand-made" not in p.stderr
    assert events.describe_rule(Name="clock-sandbox-hand-made")["State"] == "ENABLED"


def test_a_removal_interrupted_after_remove_targets_is_finished_by_the_next_deploy(moto, app):
    ok(deploy(moto, app, "sandbox"))
    events = moto.client("events", region=REGION)
    # As if a deploy removing every-five was killed right after RemoveTargets: the rule has
    # no target left, only the record says it is sluice's.
    events.remove_targets(Rule="clock-sandbox-every-five", Ids=["sluice.clock.sandbox"])
    text = (app / "sluice.yaml").read_text()
    (app / "sluice.yaml").write_text(
        text.replace("  every-five:\n    function: tick\n    expression: rate(5 minutes)\n", ""))
    p = ok(deploy(moto, app, "sandbox"))
    assert "- remove schedule rule clock-sandbox-every-five (no longer in the stack)" in p.stderr
    with pytest.raises(events.exceptions.ResourceNotFoundException):
        events.describe_rule(Name="clock-sandbox-every-five")


def test_a_stack_without_schedules_needs_no_eventbridge_permission(moto, app):
    text = (app / "sluice.yaml").read_text()
    (app / "sluice.yaml").write_text(text.split("schedules:")[0])
    proxy = FaultProxy(moto.port)
    denied = json.dumps({"__type": "AccessDeniedException", "message": "not authorized to perform events:ListRules"})
    proxy.rules.append({"match": lambda m, path, body: m == "POST" and '"NamePrefix"' in body, "status": 400,
                        "times": None, "body": denied,
                        "headers": {"content-type": "application/x-amz-json-1.1"}})
    try:
        ok(deploy(moto, app, "sandbox", endpoint=proxy.url))
        assert any(c[2] == 400 for c in proxy.calls)
        # With schedules, the same refusal stops the deploy with EventBridge's message.
        (app / "sluice.yaml").write_text(text)
        p = deploy(moto, app, "sandbox", endpoint=proxy.url)
        assert p.returncode == 1
        assert "AccessDeniedException" in p.stderr.strip().splitlines()[-1], p.stderr
    finally:
        proxy.stop()
