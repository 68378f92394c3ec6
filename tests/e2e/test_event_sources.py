"""SQS event source mappings (`event_sources:`): sluice polls a queue on moto_server and
invokes the function with batches in the "aws:sqs" event, deleting what succeeded."""
import json
import time

import pytest

from conftest import wait_until

sluice = pytest.importorskip("sluice")

REGION = "us-east-1"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:123456789012:orders"

STACK = f"""
name: esm
defaults: {{runtime: python3.11, timeout: 1}}  # below the test queues' visibility timeouts
functions:
  worker: {{code: fn/, handler: handlers.sqs_worker}}
event_sources:
  orders:
    function: worker
    queue: {QUEUE_ARN}
    batch_size: 5
    batching_window: 1
    report_batch_item_failures: true
"""


@pytest.fixture
def project(ws):
    ws.copy_function("python-basic", "fn")
    ws.write_stack(STACK)
    return ws


def seen(app):
    return [json.loads(line.split("MSG ", 1)[1]) for line in app.logs("worker").splitlines() if "MSG " in line]


def queue_counts(sqs, url):
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])


def test_messages_arrive_in_the_sqs_event_and_leave_the_queue(project, aws_endpoint):
    sqs = aws_endpoint.client("sqs", REGION)
    url = sqs.create_queue(QueueName="orders")["QueueUrl"]
    with sluice.serve(project.path / "sluice.yaml") as app:
        attrs = {"kind": {"DataType": "String", "StringValue": "new"},
                 "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01raw"},
                 "count": {"DataType": "Number.int", "StringValue": "42"}}
        sent = [sqs.send_message(QueueUrl=url, MessageBody=f"order {i}", MessageAttributes=attrs) for i in range(3)]
        plain = sqs.send_message(QueueUrl=url, MessageBody="no attributes")
        records = wait_until(lambda: len(seen(app)) >= 4 and seen(app))
        assert sorted(r["messageId"] for r in records) == sorted(s["MessageId"] for s in sent + [plain])
        r = next(r for r in records if r["messageId"] == sent[0]["MessageId"])
        # The event's shape: the keys and their order as generate-event's (AWS's documented event).
        example = json.loads(project.run("generate-event", "sqs", "receive-message").stdout)["Records"][0]
        assert list(r) == list(example)
        assert list(r["attributes"])[:4] == ["ApproximateReceiveCount", "SentTimestamp", "SenderId",
                                             "ApproximateFirstReceiveTimestamp"]
        assert r["body"] == "order 0" and r["md5OfBody"] == sent[0]["MD5OfMessageBody"]
        assert r["attributes"]["ApproximateReceiveCount"] == "1"
        assert r["messageAttributes"]["kind"] == {"stringValue": "new", "stringListValues": [],
                                                  "binaryListValues": [], "dataType": "String"}
        assert r["messageAttributes"]["blob"]["dataType"] == "Binary"
        # The attributes' checksum as SQS computes it (here: moto's, at send), null without any.
        assert r["md5OfMessageAttributes"] == sent[0]["MD5OfMessageAttributes"]
        assert next(x for x in records if x["messageId"] == plain["MessageId"])["md5OfMessageAttributes"] is None
        assert (r["eventSource"], r["eventSourceARN"], r["awsRegion"]) == ("aws:sqs", QUEUE_ARN, REGION)
        # The batch succeeded: deleted from the queue.
        wait_until(lambda: queue_counts(sqs, url) == (0, 0))
        recs = app.records("worker")
        assert recs and all(x.source == "sqs orders" and x.invocation_type == "RequestResponse" for x in recs)


def test_reported_item_failures_stay_and_a_failed_batch_comes_back(project, aws_endpoint):
    sqs = aws_endpoint.client("sqs", REGION)
    # Long enough for the batching window and a cold start (else a second poller takes the
    # message again, as on AWS), short enough for the test.
    url = sqs.create_queue(QueueName="orders", Attributes={"VisibilityTimeout": "3"})["QueueUrl"]
    with sluice.serve(project.path / "sluice.yaml") as app:
        ok = sqs.send_message(QueueUrl=url, MessageBody="fine")["MessageId"]
        bad = sqs.send_message(QueueUrl=url, MessageBody="please fail")["MessageId"]
        # The failed item is received again once its visibility timeout has passed.
        again = wait_until(lambda: [r for r in seen(app) if r["messageId"] == bad
                                  and r["attributes"]["ApproximateReceiveCount"] == "2"])
        assert again
        assert [r["messageId"] for r in seen(app)].count(ok) == 1  # deleted after its first success
        sqs.purge_queue(QueueUrl=url)
        crash = sqs.send_message(QueueUrl=url, MessageBody="crash")["MessageId"]
        # A function error: the whole batch stays and comes back.
        wait_until(lambda: [r for r in seen(app) if r["messageId"] == crash
                          and r["attributes"]["ApproximateReceiveCount"] == "2"])
        assert any(x.status == "function_error" and x.source == "sqs orders" for x in app.records("worker"))


def test_stack_edits_keep_start_and_stop_pollers(project, aws_endpoint):
    sqs = aws_endpoint.client("sqs", REGION)
    url = sqs.create_queue(QueueName="orders")["QueueUrl"]
    stack = project.path / "sluice.yaml"
    with sluice.serve(stack, watch=False) as app:
        sqs.send_message(QueueUrl=url, MessageBody="before")
        wait_until(lambda: [r for r in seen(app) if r["body"] == "before"])
        app.reload()  # unchanged: the poller goes on
        sqs.send_message(QueueUrl=url, MessageBody="unchanged")
        wait_until(lambda: [r for r in seen(app) if r["body"] == "unchanged"])
        stack.write_text(STACK.replace("    batch_size: 5\n", "    batch_size: 1\n    enabled: false\n"))
        app.reload()  # disabled: no longer polled
        sqs.send_message(QueueUrl=url, MessageBody="while disabled")
        time.sleep(2.5)
        assert not [r for r in seen(app) if r["body"] == "while disabled"]
        stack.write_text(STACK.replace("    batch_size: 5\n", "    batch_size: 1\n"))
        app.reload()  # enabled again: the waiting message is taken
        wait_until(lambda: [r for r in seen(app) if r["body"] == "while disabled"])


def test_event_sources_can_be_switched_off(project, aws_endpoint):
    sqs = aws_endpoint.client("sqs", REGION)
    url = sqs.create_queue(QueueName="orders")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="waits")
    with sluice.serve(project.path / "sluice.yaml", event_sources=False) as app:
        time.sleep(2.5)  # a poller would have taken it within about a second
        assert app.records("worker") == []
        assert queue_counts(sqs, url) == (1, 0)


def test_without_an_endpoint_the_queue_is_not_polled(project, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_SQS", raising=False)
    srv = project.serve()  # stopped by the workspace fixture
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "not polling" not in srv.stderr() + srv.stdout():
        time.sleep(0.1)
    assert (f"event source orders: not polling {QUEUE_ARN}: no SQS endpoint (set AWS_ENDPOINT_URL_SQS"
            in srv.stderr() + srv.stdout())


def test_filters_let_matching_messages_through_and_delete_the_rest(project, aws_endpoint):
    sqs = aws_endpoint.client("sqs", REGION)
    url = sqs.create_queue(QueueName="orders")["QueueUrl"]
    project.write_stack(STACK.replace("    report_batch_item_failures: true\n", (
        "    filters:\n"
        "      - {body: {kind: [order], total: [{numeric: ['>', 10]}]}}\n"
        "      - '{\"body\": [{\"prefix\": \"PING \"}]}'\n")))
    bodies = {
        json.dumps({"kind": "order", "total": 25}): True,
        json.dumps({"kind": "order", "total": 5}): False,    # total not over 10
        json.dumps({"kind": "refund", "total": 25}): False,  # another kind
        "PING 1": True,                                      # plain text, the prefix rule
        "kind=order": False,                                 # plain text against the JSON pattern
        json.dumps({"note": "PING 2"}): False,               # JSON against the plain-text rule
    }
    with sluice.serve(project.path / "sluice.yaml") as app:
        for body in bodies:
            sqs.send_message(QueueUrl=url, MessageBody=body)
        wanted = sorted(b for b, ok in bodies.items() if ok)
        wait_until(lambda: sorted(r["body"] for r in seen(app)) == wanted)
        # The others never reach the function: they were deleted (none waits, none is in flight).
        wait_until(lambda: queue_counts(sqs, url) == (0, 0))
        assert sorted(r["body"] for r in seen(app)) == wanted


def test_a_queue_that_hides_messages_for_less_than_the_function_timeout_is_refused(project, aws_endpoint):
    # AWS refuses such a mapping (InvalidParameterValueException); sluice does not poll it until
    # the queue is set right.
    sqs = aws_endpoint.client("sqs", REGION)
    url = sqs.create_queue(QueueName="orders", Attributes={"VisibilityTimeout": "2"})["QueueUrl"]
    project.write_stack(STACK.replace("timeout: 1}", "timeout: 5}"))
    sqs.send_message(QueueUrl=url, MessageBody="waits")
    srv = project.serve()  # stopped by the workspace fixture
    out = lambda: srv.stderr() + srv.stdout()
    wait_until(lambda: "Queue visibility timeout" in out())
    assert (f"event source orders: not polling {QUEUE_ARN}: AWS refuses this mapping (InvalidParameterValueException: "
            "Queue visibility timeout: 2 seconds is less than Function timeout: 5 seconds)") in out()
    time.sleep(1.5)
    assert queue_counts(sqs, url) == (1, 0) and "MSG " not in out()
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "5"})
    wait_until(lambda: '"body": "waits"' in out())
    wait_until(lambda: queue_counts(sqs, url) == (0, 0))


@pytest.mark.parametrize("limit, count", [(None, 30), (2, 10)])
def test_pollers_scale_up_with_a_backlog_or_stay_within_the_maximum_concurrency(project, aws_endpoint, limit, count):
    sqs = aws_endpoint.client("sqs", REGION)
    url = sqs.create_queue(QueueName="orders")["QueueUrl"]
    one_each = STACK.replace("    batch_size: 5\n    batching_window: 1\n", "    batch_size: 1\n")
    if limit:
        one_each = one_each.replace("    batch_size: 1\n", f"    batch_size: 1\n    max_concurrency: {limit}\n")
    project.write_stack(one_each)
    for _ in range(count):
        sqs.send_message(QueueUrl=url, MessageBody="sleep")  # 0.6 s each
    with sluice.serve(project.path / "sluice.yaml") as app:
        recs = wait_until(lambda: len(app.records("worker")) >= count and app.records("worker"), timeout=40)
        assert all(r.status == "success" for r in recs)
        # The most invocations that ran at the same time.
        edges = sorted([(r.started, 1) for r in recs] + [(r.started + r.duration_ms / 1000, -1) for r in recs],
                       key=lambda e: (e[0], e[1]))
        running = most = 0
        for _, step in edges:
            running += step
            most = max(most, running)
        if limit:
            assert most == limit
        else:
            # Five pollers to start with; every one busy and messages waiting: one more each 200 ms.
            assert most > 5, most
        wait_until(lambda: queue_counts(sqs, url) == (0, 0))
