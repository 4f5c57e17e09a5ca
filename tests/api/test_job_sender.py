"""The API's sender against a real Redis broker: one-step jobs that reach it while a send is
under way go out together, each job in exactly one message; a lone job, a job of several
steps and a traced job keep a message of their own."""

import asyncio
import base64
import json
from contextlib import suppress

import pytest
from celery import Celery

from api.job_sender import JobSender
from jobcontract.plan import JobPlan
from jobcontract.priorities import queue_keys
from speechfleet.redis_server import EmbeddedRedis
from speechmodels.config import queue_for
from speechmodels.registry import VAD
from tests.fleet import single_step_plan
from workers.canvas import job_ids_of_task


@pytest.fixture
def broker(private_redis):
    app = Celery("sender-test", broker=private_redis.url)
    app.conf.task_serializer = "json"
    client = app.connection_for_write().default_channel.client
    yield app, client
    app.close()


def messages(client, model: str) -> list[dict]:
    """The queue's messages, oldest first: task name, id and arguments of each."""
    found = []
    for key in queue_keys(queue_for(model)):
        for raw in reversed(client.lrange(key, 0, -1)):
            message = json.loads(raw)
            args, _, _ = json.loads(base64.b64decode(message["body"]))
            found.append({"task": message["headers"]["task"], "id": message["headers"]["id"], "args": args})
    return found


def test_jobs_waiting_for_a_send_go_in_one_message_each_job_once(broker):
    app, client = broker
    sender = JobSender(app, max_jobs_per_message=8)
    ids = [f"burst{index:02d}" for index in range(12)]

    async def burst():
        await asyncio.gather(*(sender.send(job_id, single_step_plan("send-burst", VAD), "normal", None)
                               for job_id in ids))

    asyncio.run(burst())
    sent = messages(client, "send-burst")
    assert [len(message["args"][0]) for message in sent] == [8, 4]  # at most 8 a message, in arrival order
    assert all(message["task"] == "speechfleet.steps" for message in sent)
    carried = [job_id for message in sent for job_id in message["args"][0]]
    assert carried == ids  # every job exactly once
    assert [job_ids_of_task(message["id"]) for message in sent] == [ids[:8], ids[8:]]  # the sweeper's view


def test_a_lone_job_and_jobs_that_cannot_share_keep_a_message_each(broker):
    app, client = broker
    sender = JobSender(app, max_jobs_per_message=8)
    chain = JobPlan.build("send-alone", VAD, [("send-alone", VAD)] * 2)

    async def send_all():
        await sender.send("lone", single_step_plan("send-alone", VAD), "normal", None)
        await asyncio.gather(
            sender.send("traced", single_step_plan("send-alone", VAD), "normal",
                        {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}),
            sender.send("chained", chain, "normal", None),
            sender.send("urgent", single_step_plan("send-alone", VAD), "high", None),
            sender.send("plain", single_step_plan("send-alone", VAD), "normal", None))

    asyncio.run(send_all())
    sent = messages(client, "send-alone")
    by_job = {message["args"][0] if message["task"] == "speechfleet.step" else tuple(message["args"][0]): message
              for message in sent}
    assert by_job["lone"]["id"] == "lone"  # a job sent on its own: the message format it always had
    assert by_job["traced"]["id"] == "traced"
    assert by_job["chained"]["id"].startswith("chained:")  # a chain's first step
    assert by_job["urgent"]["id"] == "urgent" and by_job["plain"]["id"] == "plain"  # priorities never share
    assert len(sent) == 5


def test_a_caller_gone_before_its_send_leaves_its_job_out(broker):
    app, client = broker
    sender = JobSender(app, max_jobs_per_message=8)
    plan = single_step_plan("send-cancel", VAD)

    async def scenario():
        first = asyncio.create_task(sender.send("first", plan, "normal", None))
        await asyncio.sleep(0)  # the first job reaches the sender, which starts its send
        await asyncio.sleep(0)
        gone = asyncio.create_task(sender.send("gone", plan, "normal", None))
        stays = asyncio.create_task(sender.send("stays", plan, "normal", None))
        await asyncio.sleep(0)  # both wait for the send under way
        gone.cancel()
        await asyncio.gather(first, stays)
        with suppress(asyncio.CancelledError):
            await gone
        return gone.cancelled()

    assert asyncio.run(scenario())
    # each alone in its message (the old format: args are the job id and the step)
    assert [message["args"][0] for message in messages(client, "send-cancel")] == ["first", "stays"]


def test_every_job_of_a_message_that_could_not_be_sent_gets_the_error():
    with EmbeddedRedis() as server:
        url = server.url
    app = Celery("sender-down", broker=url)  # its Redis is gone
    app.conf.update(task_serializer="json", broker_connection_retry=False, broker_connection_max_retries=0)
    sender = JobSender(app, max_jobs_per_message=8)

    async def burst():
        return await asyncio.gather(*(sender.send(f"down{index}", single_step_plan("send-down", VAD), "normal", None)
                                      for index in range(3)), return_exceptions=True)

    outcomes = asyncio.run(burst())
    assert all(isinstance(outcome, Exception) for outcome in outcomes), outcomes
    app.close()
