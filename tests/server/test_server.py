"""
pio serve against the official `openai` client (and raw HTTP for what the
client cannot send). Each server is started on a free loopback port with the
tiny fixture model and is ready when GET /health answers 200.

Run: PIO=build/pio python3 -m pytest -q tests/server/test_server.py
(tests/cli/serve.sh does this under ctest).
"""
import concurrent.futures as cf
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time

import openai
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PIO = os.environ.get("PIO", os.path.join(ROOT, "build", "pio"))
TINY = os.path.join(ROOT, "tests", "fixtures", "qwen3", "tied_gqa2_f32")
MODEL = "tied_gqa2_f32"
KEY = "test-key"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A pio serve process; stop() sends SIGTERM and returns the exit code."""

    def __init__(self, *args, model=TINY):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [PIO, "serve", "-m", model, "--port", str(self.port), "-q", "-t", "2", *args]
        self.log = tempfile.TemporaryFile("w+")           # the server's stderr, shown on failure
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pio serve exited {self.proc.returncode}: {self.logtext()}")
            try:
                status, _, _ = self.raw("GET", "/health", timeout=2)
                if status == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                self.proc.kill()
                raise RuntimeError("pio serve did not become ready: " + self.logtext())
            time.sleep(0.05)

    def logtext(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def raw(self, method, path, body=None, headers=None, timeout=30):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            c.close()

    def client(self, key=KEY, **kw):
        return openai.OpenAI(base_url=self.url + "/v1", api_key=key, max_retries=0, **kw)

    def metrics(self):
        status, _, body = self.raw("GET", "/metrics")
        assert status == 200
        out = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def wait_metrics(self, pred, timeout=10):
        deadline = time.time() + timeout
        while True:
            m = self.metrics()
            if pred(m):
                return m
            if time.time() > deadline:
                raise AssertionError(f"metrics never satisfied the condition: {m}")
            time.sleep(0.02)

    def stop(self, timeout=20):
        """SIGTERM, wait; the exit code, or 99 when a sanitizer reported anything."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
            log = self.logtext()
            if re.search(r"Sanitizer|runtime error", log):
                print(log)
                return 99
            return rc
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self.log.close()


@pytest.fixture(scope="module")
def srv():
    s = Server("--api-key", KEY, "--max-seqs", "32", "--max-body", "65536", "--max-tokens-limit", "100")
    yield s
    assert s.stop() == 0, s.logtext()


@pytest.fixture(scope="module")
def big():
    """Long contexts (slow requests) for disconnect, overload, timeout and prefix caching."""
    s = Server("--ctx-size", "16384", "--max-seqs", "2", "--max-queue", "2", "--timeout", "3")
    yield s
    assert s.stop() == 0, s.logtext()


def err_body(body):
    e = json.loads(body)["error"]
    assert set(e) >= {"message", "type", "param", "code"}, e
    return e


# ---- endpoints ----------------------------------------------------------------------------------


def test_health_open_and_models(srv):
    status, _, body = srv.raw("GET", "/health")
    assert status == 200 and json.loads(body)["status"] == "ok"
    models = srv.client().models.list()
    assert [m.id for m in models.data] == [MODEL]
    assert srv.client().models.retrieve(MODEL).id == MODEL


def test_chat_nonstream_and_stream_agree(srv):
    c = srv.client()
    msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}]
    r = c.chat.completions.create(model=MODEL, messages=msgs, max_tokens=12, temperature=0)
    ch = r.choices[0]
    assert ch.message.role == "assistant"
    assert ch.finish_reason in ("stop", "length")
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens <= 12
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens

    chunks = list(c.chat.completions.create(model=MODEL, messages=msgs, max_tokens=12, temperature=0,
                                            stream=True, stream_options={"include_usage": True}))
    text = "".join(k.choices[0].delta.content or "" for k in chunks if k.choices)
    finish = [k.choices[0].finish_reason for k in chunks if k.choices and k.choices[0].finish_reason]
    assert text == (ch.message.content or "")
    assert finish == [ch.finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == r.usage.completion_tokens


def test_text_parts(srv):
    c = srv.client()
    a = c.chat.completions.create(model=MODEL, max_tokens=6, temperature=0,
                                  messages=[{"role": "user", "content": "ab cd"}])
    b = c.chat.completions.create(model=MODEL, max_tokens=6, temperature=0, messages=[
        {"role": "user", "content": [{"type": "text", "text": "ab"}, {"type": "text", "text": " cd"}]}])
    assert a.choices[0].message.content == b.choices[0].message.content


def test_completions_nonstream_and_stream(srv):
    c = srv.client()
    r = c.completions.create(model=MODEL, prompt="once upon a time", max_tokens=10, temperature=0)
    assert r.object == "text_completion" and r.usage.completion_tokens <= 10
    chunks = list(c.completions.create(model=MODEL, prompt="once upon a time", max_tokens=10,
                                       temperature=0, stream=True))
    assert "".join(k.choices[0].text for k in chunks) == r.choices[0].text
    # token ids as the prompt
    r2 = c.completions.create(model=MODEL, prompt=[1, 2, 3, 4], max_tokens=3, temperature=0)
    assert r2.usage.prompt_tokens == 4


def test_raw_sse_format(srv):
    body = json.dumps({"model": MODEL, "prompt": "x", "max_tokens": 3, "temperature": 0, "stream": True})
    status, headers, data = srv.raw("POST", "/v1/completions", body,
                                    {"Authorization": "Bearer " + KEY, "Content-Type": "application/json"})
    assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
    events = data.decode().split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    for e in events[:-2]:
        assert e.startswith("data: {")


def test_logprobs(srv):
    c = srv.client()
    r = c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=5,
                                  temperature=0, logprobs=True, top_logprobs=3, extra_body={"ignore_eos": True})
    lp = r.choices[0].logprobs.content
    assert len(lp) == r.usage.completion_tokens == 5
    for t in lp:
        assert t.logprob <= 0 and len(t.top_logprobs) == 3
        # greedy: the chosen token is the most likely one
        assert abs(t.top_logprobs[0].logprob - t.logprob) < 1e-5
    r = c.completions.create(model=MODEL, prompt="abc", max_tokens=4, temperature=0, logprobs=2,
                             extra_body={"ignore_eos": True})
    assert len(r.choices[0].logprobs.token_logprobs) == 4


def test_n_and_seed(srv):
    c = srv.client()
    kw = dict(model=MODEL, messages=[{"role": "user", "content": "pick"}], max_tokens=8, temperature=1.0,
              top_p=0.95, seed=42, presence_penalty=0.5, frequency_penalty=0.2,
              extra_body={"repetition_penalty": 1.1, "top_k": 50, "min_p": 0.01})
    a = c.chat.completions.create(n=3, **kw)
    assert sorted(ch.index for ch in a.choices) == [0, 1, 2]
    b = c.chat.completions.create(n=3, **kw)
    assert [ch.message.content for ch in a.choices] == [ch.message.content for ch in b.choices]


def test_stop_strings(srv):
    c = srv.client()
    kw = dict(model=MODEL, prompt="the quick brown fox", max_tokens=30, temperature=0,
              extra_body={"ignore_eos": True})
    full = c.completions.create(**kw).choices[0].text
    assert len(full) > 6, full
    stop = full[4:6]
    cut = full.index(stop)
    r = c.completions.create(stop=[stop, "\x00never"], **kw)
    assert r.choices[0].text == full[:cut]
    assert r.choices[0].finish_reason == "stop"
    chunks = list(c.completions.create(stop=stop, stream=True, **kw))
    assert "".join(k.choices[0].text for k in chunks) == full[:cut]


def test_tools_accepted(srv):
    # the request shape with tools is accepted and rendered; tool-call parsing
    # of the model's output depends on the chat parsers (see the report)
    c = srv.client()
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "weather",
                                                "parameters": {"type": "object", "properties": {
                                                    "city": {"type": "string"}}}}}]
    r = c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "weather?"}],
                                  tools=tools, tool_choice="auto", max_tokens=4, temperature=0)
    assert r.choices[0].finish_reason in ("stop", "length", "tool_calls")


def test_tool_round_trip_request(srv):
    # a second turn carrying the assistant's tool call and the tool's result renders and runs
    c = srv.client()
    msgs = [{"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}]
    r = c.chat.completions.create(model=MODEL, messages=msgs, max_tokens=4, temperature=0,
                                  tool_choice="none", tools=[{"type": "function", "function": {
                                      "name": "get_weather", "parameters": {"type": "object"}}}])
    assert r.choices[0].message.tool_calls is None
    status, _, body = srv.raw("POST", "/v1/chat/completions", json.dumps(
        {"messages": msgs, "tool_choice": 7}), {"Authorization": "Bearer " + KEY})
    assert status == 400 and err_body(body)["param"] == "tool_choice"


THINK_TEMPLATE = (
    "{%- if tools %}{{- '<|im_start|>system\\nTools: ' + (tools | tojson) + '<|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>\\n' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n<think>\\n' }}{%- endif %}")


def test_reasoning_and_tools_in_template(tmp_path):
    """A template whose prompt opens <think>: the whole reply is reasoning_content
    (streamed and not); tools reach the template (the prompt grows)."""
    d = tmp_path / "think_model"
    d.mkdir()
    for f in os.listdir(TINY):
        if f != "tokenizer_config.json":
            os.symlink(os.path.join(TINY, f), d / f)
    (d / "chat_template.jinja").write_text(THINK_TEMPLATE)
    s = Server("--model-name", "think", model=str(d))
    try:
        c = s.client(key="x")
        msgs = [{"role": "user", "content": "think about it"}]
        r = c.chat.completions.create(model="think", messages=msgs, max_tokens=10, temperature=0,
                                      extra_body={"ignore_eos": True})
        m = r.choices[0].message
        reasoning = m.model_extra.get("reasoning_content")
        assert reasoning and not m.content, m
        chunks = list(c.chat.completions.create(model="think", messages=msgs, max_tokens=10, temperature=0,
                                                stream=True, extra_body={"ignore_eos": True}))
        streamed = "".join((k.choices[0].delta.model_extra or {}).get("reasoning_content") or ""
                           for k in chunks if k.choices)
        assert streamed == reasoning
        tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
        with_tools = c.chat.completions.create(model="think", messages=msgs, max_tokens=1, tools=tools)
        none_tools = c.chat.completions.create(model="think", messages=msgs, max_tokens=1, tools=tools,
                                               tool_choice="none")
        assert with_tools.usage.prompt_tokens > r.usage.prompt_tokens == none_tools.usage.prompt_tokens
    finally:
        assert s.stop() == 0


# ---- tool_choice "required" / named: constrained decoding ------------------------------------------
# The random-weight fixture never writes a tool call by itself: every call
# below exists because the server masks the logits to the model family's
# tool-call text (src/chat/tool_constraint.h) and closes it before max_tokens.

TC_TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "weather",
                                      "parameters": {"type": "object", "properties": {
                                          "city": {"type": "string"}, "days": {"type": "integer"}}}}},
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}]
TC_MSGS = [{"role": "user", "content": "weather in Paris?"}]


def tc_streamed(chunks):
    """(calls as [{"name", "arguments"}], content, finish_reason) assembled from stream chunks."""
    calls, content, finish = {}, "", None
    for k in chunks:
        for ch in k.choices:
            content += ch.delta.content or ""
            for tc in ch.delta.tool_calls or []:
                c = calls.setdefault(tc.index, {"name": "", "arguments": ""})
                if tc.function and tc.function.name:
                    c["name"] += tc.function.name
                if tc.function and tc.function.arguments:
                    c["arguments"] += tc.function.arguments
            finish = ch.finish_reason or finish
    return [calls[i] for i in sorted(calls)], content, finish


def tc_check(r, names, exactly_one):
    """The non-streamed reply is only tool calls, to `names`, with JSON object arguments."""
    ch = r.choices[0]
    calls = ch.message.tool_calls or []
    assert ch.finish_reason == "tool_calls", ch
    assert len(calls) == 1 if exactly_one else len(calls) >= 1, ch
    for c in calls:
        assert c.function.name in names, c
        assert isinstance(json.loads(c.function.arguments), dict), c
    assert not ch.message.content, ch
    return [{"name": c.function.name, "arguments": c.function.arguments} for c in calls]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_tool_choice_named(srv, seed):
    c = srv.client()
    kw = dict(model=MODEL, messages=TC_MSGS, tools=TC_TOOLS, seed=seed, temperature=1.0, max_tokens=100,
              tool_choice={"type": "function", "function": {"name": "get_time"}})
    calls = tc_check(c.chat.completions.create(**kw), {"get_time"}, exactly_one=True)
    streamed, content, finish = tc_streamed(c.chat.completions.create(stream=True, **kw))
    assert finish == "tool_calls" and not content
    assert streamed == calls                       # same seed, same call
    kw["tool_choice"] = {"type": "function", "function": {"name": "get_weather"}}
    tc_check(c.chat.completions.create(**kw), {"get_weather"}, exactly_one=True)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_tool_choice_required(srv, seed):
    c = srv.client()
    kw = dict(model=MODEL, messages=TC_MSGS, tools=TC_TOOLS, tool_choice="required", seed=seed, max_tokens=100)
    calls = tc_check(c.chat.completions.create(**kw), {"get_weather", "get_time"}, exactly_one=False)
    streamed, content, finish = tc_streamed(c.chat.completions.create(stream=True, **kw))
    assert finish == "tool_calls" and not content
    assert streamed == calls
    for x in streamed:
        assert isinstance(json.loads(x["arguments"]), dict)
    tc_check(c.chat.completions.create(parallel_tool_calls=False, **kw), {"get_weather", "get_time"},
             exactly_one=True)


def test_tool_choice_n_and_greedy(srv):
    # every choice is constrained on its own; greedy decoding too
    c = srv.client()
    r = c.chat.completions.create(model=MODEL, messages=TC_MSGS, tools=TC_TOOLS, tool_choice="required", n=3,
                                  seed=7, max_tokens=100)
    for ch in r.choices:
        assert ch.finish_reason == "tool_calls" and ch.message.tool_calls, ch
    r = c.chat.completions.create(model=MODEL, messages=TC_MSGS, tools=TC_TOOLS, temperature=0, max_tokens=100,
                                  tool_choice={"type": "function", "function": {"name": "get_weather"}})
    tc_check(r, {"get_weather"}, exactly_one=True)


def test_tool_choice_cut_by_max_tokens(srv):
    # too few tokens for even the shortest call: the reply ends with "length"
    # and the partial call text stays content (no tool_calls)
    r = srv.client().chat.completions.create(model=MODEL, messages=TC_MSGS, tools=TC_TOOLS, max_tokens=5,
                                             tool_choice="required", seed=1)
    ch = r.choices[0]
    assert ch.finish_reason == "length" and not ch.message.tool_calls, ch
    assert ch.message.content.startswith("<")


@pytest.mark.parametrize("tool_choice,tools,needle", [
    ({"type": "function", "function": {"name": "nope"}}, TC_TOOLS, "nope"),
    ({"type": "function", "function": {}}, TC_TOOLS, "name"),
    ("required", None, "tools"),
    ("required", [], "tools"),
    ({"type": "function", "function": {"name": "get_time"}}, None, "tools"),
])
def test_tool_choice_400(srv, tool_choice, tools, needle):
    body = {"messages": TC_MSGS, "tool_choice": tool_choice}
    if tools is not None:
        body["tools"] = tools
    status, _, data = srv.raw("POST", "/v1/chat/completions", json.dumps(body), {"Authorization": "Bearer " + KEY})
    assert status == 400, data
    e = err_body(data)
    assert e["param"] == "tool_choice" and needle in e["message"], e
    with pytest.raises(openai.BadRequestError):
        srv.client().chat.completions.create(model=MODEL, messages=TC_MSGS, tools=TC_TOOLS,
                                             tool_choice={"type": "function", "function": {"name": "nope"}})


def tc_model(tmp_path, name, template):
    """The fixture model with another chat template (which picks the tool-call format)."""
    d = tmp_path / name
    d.mkdir()
    for f in os.listdir(TINY):
        if f != "tokenizer_config.json":
            os.symlink(os.path.join(TINY, f), d / f)
    (d / "chat_template.jinja").write_text(template)
    return str(d)


CHATML = ("{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
          "'<|im_end|>\\n' }}{%- endfor %}")
TC_TEMPLATES = {
    # the format comes from the template text (pio_tool_format_from_template)
    "think_json": CHATML + "{#- <tool_call> #}{%- if add_generation_prompt %}"
                  "{{- '<|im_start|>assistant\\n<think>\\n' }}{%- endif %}",
    "xml": CHATML + "{#- <tool_call>\\n<function=NAME> #}{%- if add_generation_prompt %}"
           "{{- '<|im_start|>assistant\\n' }}{%- endif %}",
    "glm": CHATML + "{#- <tool_call>NAME<arg_key>K</arg_key> #}{%- if add_generation_prompt %}"
           "{{- '<|im_start|>assistant\\n<think>' }}{%- endif %}",
}


@pytest.mark.parametrize("fmt", sorted(TC_TEMPLATES))
def test_tool_choice_formats(tmp_path, fmt):
    """Qwen3 JSON after an open <think>, Qwen3-Coder XML and GLM-4.7 (after an
    open <think>): the constrained reply parses back as calls in every format."""
    s = Server("--model-name", fmt, model=tc_model(tmp_path, fmt, TC_TEMPLATES[fmt]))
    try:
        c = s.client(key="x")
        for seed in (1, 2):
            kw = dict(model=fmt, messages=TC_MSGS, tools=TC_TOOLS, seed=seed, temperature=1.0)
            r = c.chat.completions.create(tool_choice={"type": "function", "function": {"name": "get_weather"}}, **kw)
            calls = tc_check(r, {"get_weather"}, exactly_one=True)
            if fmt != "xml":      # the prompt opened <think>: the reply starts with reasoning
                assert "reasoning_content" in r.choices[0].message.model_extra
            streamed, _, finish = tc_streamed(c.chat.completions.create(
                stream=True, tool_choice={"type": "function", "function": {"name": "get_weather"}}, **kw))
            assert finish == "tool_calls" and streamed == calls
            tc_check(c.chat.completions.create(tool_choice="required", **kw), {"get_weather", "get_time"},
                     exactly_one=False)
    finally:
        assert s.stop() == 0, s.logtext()


def test_metrics_shape(srv):
    m = srv.metrics()
    for name in ("pio_requests_total", "pio_prompt_tokens_total", "pio_generation_tokens_total",
                 "pio_queue_depth", "pio_running_sequences", "pio_kv_usage_ratio",
                 "pio_prefix_cache_hit_rate", "pio_time_to_first_token_seconds_count",
                 'pio_inter_token_latency_seconds_bucket{le="+Inf"}'):
        assert name in m, name
    assert m["pio_time_to_first_token_seconds_count"] >= 1


# ---- errors -------------------------------------------------------------------------------------


def test_401(srv):
    with pytest.raises(openai.AuthenticationError) as e:
        srv.client(key="wrong").models.list()
    assert e.value.status_code == 401
    status, _, body = srv.raw("POST", "/v1/chat/completions", "{}")
    assert status == 401 and err_body(body)["code"] == "invalid_api_key"
    assert srv.raw("GET", "/health")[0] == 200      # open without a key


def test_404(srv):
    with pytest.raises(openai.NotFoundError):
        srv.client().chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    status, _, body = srv.raw("GET", "/v2/nothing", headers={"Authorization": "Bearer " + KEY})
    assert status == 404 and err_body(body)["type"] == "invalid_request_error"
    status, _, body = srv.raw("GET", "/v1/models/nope", headers={"Authorization": "Bearer " + KEY})
    assert status == 404


@pytest.mark.parametrize("body,param", [
    ("{not json", None),
    ("[1,2]", None),
    (json.dumps({"model": MODEL}), "messages"),
    (json.dumps({"messages": "hi"}), "messages"),
    (json.dumps({"messages": [{"role": "user", "content": "x"}], "temperature": 9}), "temperature"),
    (json.dumps({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}), "max_tokens"),
    (json.dumps({"messages": [{"role": "user", "content": "x"}], "max_tokens": 1000}), "max_tokens"),
    (json.dumps({"messages": [{"role": "user", "content": "x"}], "n": "two"}), "n"),
    (json.dumps({"messages": [{"role": "user", "content": "x"}], "stop": 5}), "stop"),
    (json.dumps({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}),
     "messages"),
    (json.dumps({"messages": [{"role": "user", "content": "word " * 200}]}), "messages"),
])
def test_400(srv, body, param):
    status, _, data = srv.raw("POST", "/v1/chat/completions", body,
                              {"Authorization": "Bearer " + KEY, "Content-Type": "application/json"})
    assert status == 400, data
    e = err_body(data)
    assert e["type"] == "invalid_request_error"
    assert e["param"] == param


def test_400_openai_client(srv):
    with pytest.raises(openai.BadRequestError):
        srv.client().completions.create(model=MODEL, prompt="x", top_p=0)


def test_413(srv):
    big_body = json.dumps({"model": MODEL, "prompt": "x" * 100000})
    status, _, data = srv.raw("POST", "/v1/completions", big_body,
                              {"Authorization": "Bearer " + KEY, "Content-Type": "application/json"})
    assert status == 413 and err_body(data)["code"] == "request_too_large"


# ---- batching -----------------------------------------------------------------------------------


def token_ids(r):
    return r.choices[0].logprobs.tokens, r.choices[0].text


def test_batch_invariance():
    """32 concurrent greedy requests give exactly the tokens they give one at a time."""
    s = Server("--max-seqs", "32", "--no-prefix-cache", "--batch-tokens", "256")
    try:
        c = s.client(key="x")
        prompts = [f"request {i}: " + "lorem ipsum " * (i % 7) + str(i * 7919) for i in range(32)]

        def one(p):
            return token_ids(c.completions.create(model=MODEL, prompt=p, max_tokens=24, temperature=0,
                                                  logprobs=0, extra_body={"ignore_eos": True}))

        alone = [one(p) for p in prompts]
        steps0 = s.metrics()["pio_steps_total"]
        with cf.ThreadPoolExecutor(32) as ex:
            together = list(ex.map(one, prompts))
        steps = s.metrics()["pio_steps_total"] - steps0
        assert steps < 32 * 24 / 2, f"the requests were not batched ({steps} steps)"
        for i, (a, b) in enumerate(zip(alone, together)):
            assert a == b, f"request {i}: alone {a} vs batched {b}"
    finally:
        assert s.stop() == 0


@pytest.mark.parametrize("cache", [False, True])
def test_preemption_recomputes_exactly(cache):
    """A KV pool too small for all running sequences: some are preempted and
    recomputed (with the prefix cache: from their own cached blocks, evicted
    LRU under pressure); every answer matches the one computed alone."""
    s = Server("--ctx-size", "256", "--kv-blocks", "24", "--max-seqs", "4",
               *([] if cache else ["--no-prefix-cache"]))
    try:
        c = s.client(key="x")
        prompts = [f"preempt {i} " + "abc " * 10 for i in range(4)]

        # 230 tokens each (16 blocks): any two overlapping requests exceed the 24-block pool
        def one(p):
            return token_ids(c.completions.create(model=MODEL, prompt=p, max_tokens=230, temperature=0,
                                                  logprobs=0, extra_body={"ignore_eos": True}))

        alone = [one(p) for p in prompts]
        with cf.ThreadPoolExecutor(4) as ex:
            together = list(ex.map(one, prompts))
        m = s.metrics()
        assert m["pio_preemptions_total"] > 0
        assert m["pio_kv_blocks_used"] == 0
        assert alone == together
    finally:
        assert s.stop() == 0


# ---- robustness (slow requests on the long-context server) -----------------------------------


def long_stream(srv, max_tokens=16000):
    """Open a streaming request that runs for seconds; returns the connection and response."""
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    c.request("POST", "/v1/completions", json.dumps({
        "model": MODEL, "prompt": "go", "max_tokens": max_tokens, "temperature": 0, "stream": True,
        "ignore_eos": True}), {"Content-Type": "application/json"})
    return c, c.getresponse()


def test_disconnect_frees_sequence(big):
    before = big.metrics()
    c, r = long_stream(big)
    assert r.status == 200
    for _ in range(5):
        assert r.readline().startswith(b"data: ") and r.readline() == b"\n"
    big.wait_metrics(lambda m: m["pio_running_sequences"] == 1)
    c.sock.shutdown(socket.SHUT_RDWR)
    c.close()
    m = big.wait_metrics(lambda m: m["pio_running_sequences"] == 0 and m["pio_kv_blocks_used"] == 0)
    assert m["pio_requests_cancelled_total"] == before["pio_requests_cancelled_total"] + 1


def test_overload_429(big):
    conns = []
    try:
        for _ in range(2):                      # fill the running batch (--max-seqs 2)
            conns.append(long_stream(big))
        big.wait_metrics(lambda m: m["pio_running_sequences"] == 2)
        for _ in range(2):                      # fill the queue (--max-queue 2)
            conns.append(long_stream(big))
        big.wait_metrics(lambda m: m["pio_queue_depth"] == 2)
        status, headers, body = big.raw("POST", "/v1/completions",
                                        json.dumps({"prompt": "x", "max_tokens": 2}))
        assert status == 429 and headers.get("Retry-After") == "1"
        assert err_body(body)["type"] == "rate_limit_exceeded"
        with pytest.raises(openai.RateLimitError):
            big.client().completions.create(model=MODEL, prompt="x", max_tokens=2)
    finally:
        for c, r in conns:
            c.close()
    big.wait_metrics(lambda m: m["pio_running_sequences"] == 0 and m["pio_queue_depth"] == 0)


def test_timeout(big):
    t0 = time.time()
    r = big.client().completions.create(model=MODEL, prompt="slow", max_tokens=16000, temperature=0,
                                        extra_body={"ignore_eos": True})
    assert time.time() - t0 < 15
    assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens < 16000
    assert big.metrics()["pio_requests_timed_out_total"] >= 1


def test_prefix_cache_hit(big):
    c = big.client()
    prefix = "shared context " * 100                  # ~1000 tokens
    m0 = big.metrics()
    r1 = c.completions.create(model=MODEL, prompt=prefix + "first", max_tokens=1, temperature=0)
    m1 = big.metrics()
    r2 = c.completions.create(model=MODEL, prompt=prefix + "second", max_tokens=1, temperature=0)
    m2 = big.metrics()
    n = r1.usage.prompt_tokens
    assert n > 500 and r1.usage.completion_tokens == 1
    hits = m2["pio_prefix_cache_hits_total"] - m1["pio_prefix_cache_hits_total"]
    assert hits >= n - 32, (hits, n)          # whole 16-token blocks are shared
    # the second prompt skipped its prefill: far fewer tokens went through the model
    computed1 = m1["pio_batch_tokens_total"] - m0["pio_batch_tokens_total"]
    computed2 = m2["pio_batch_tokens_total"] - m1["pio_batch_tokens_total"]
    assert computed1 >= n - 20 and computed2 < 40, (computed1, computed2)
    assert r2.usage.prompt_tokens_details.cached_tokens >= n - 32
    assert r2.usage.prompt_tokens_details.cached_tokens % 16 == 0
    assert m2["pio_prefix_cache_hit_rate"] > 0


def test_stress_mixed():
    """Bursts of mixed requests (stream or not, n 1-2, varied lengths) past the
    queue bound, some dropped by the client mid-way, on a KV pool that forces
    preemption: only 200s and 429s, nothing left running, blocks all back."""
    import random
    rnd = random.Random(7)
    s = Server("--max-seqs", "8", "--max-queue", "16", "--kv-blocks", "64", "--ctx-size", "512")
    try:
        def one(i):
            c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=60)
            try:
                c.request("POST", "/v1/completions", json.dumps({
                    "prompt": f"stress {i} " + "x " * rnd.randint(1, 100), "max_tokens": rnd.randint(1, 150),
                    "stream": i % 2 == 0, "n": 1 + i % 3 // 2, "temperature": 1.0, "ignore_eos": True}))
                r = c.getresponse()
                if i % 7 == 0:
                    return "dropped"
                body = r.read()
                if r.status == 200 and i % 2 == 0:
                    assert body.rstrip().endswith(b"data: [DONE]")
                return r.status
            finally:
                c.close()

        with cf.ThreadPoolExecutor(64) as ex:
            res = list(ex.map(one, range(160)))
        assert set(res) <= {200, 429, "dropped"} and 200 in res, res
        m = s.wait_metrics(lambda m: m["pio_running_sequences"] == 0 and m["pio_queue_depth"] == 0)
        assert m["pio_kv_blocks_used"] == 0
        assert s.raw("GET", "/health")[0] == 200
    finally:
        assert s.stop() == 0


def test_sigterm_finishes_inflight():
    s = Server("--ctx-size", "2048", "--shutdown-grace", "20")
    c, r = None, None
    try:
        c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
        c.request("POST", "/v1/completions", json.dumps({
            "prompt": "go", "max_tokens": 1500, "temperature": 0, "stream": True, "ignore_eos": True}))
        r = c.getresponse()
        assert r.readline().startswith(b"data: ")
        s.proc.send_signal(signal.SIGTERM)
        rest = r.read().decode()
        assert rest.rstrip().endswith("data: [DONE]")
        assert '"finish_reason":"length"' in rest
    finally:
        if c:
            c.close()
        assert s.stop() == 0


DEMO = os.path.join(ROOT, "models", "demo")


@pytest.mark.skipif(not os.path.exists(os.path.join(DEMO, "model.safetensors")), reason="no demo model")
def test_demo_model():
    """The bundled demo model (bf16): both endpoints, and 8 concurrent greedy
    requests give the tokens they give alone."""
    s = Server("--max-seqs", "8", "--no-prefix-cache", model=DEMO)
    try:
        c = s.client(key="x")
        msgs = [{"role": "user", "content": "Tell me a story."}]
        r = c.chat.completions.create(model="demo", messages=msgs, max_tokens=16, temperature=0)
        chunks = list(c.chat.completions.create(model="demo", messages=msgs, max_tokens=16, temperature=0,
                                                stream=True))
        assert "".join(k.choices[0].delta.content or "" for k in chunks) == r.choices[0].message.content
        prompts = [f"Once upon a time {i}" for i in range(8)]

        def one(p):
            return token_ids(c.completions.create(model="demo", prompt=p, max_tokens=16, temperature=0,
                                                  logprobs=0, extra_body={"ignore_eos": True}))

        alone = [one(p) for p in prompts]
        with cf.ThreadPoolExecutor(8) as ex:
            together = list(ex.map(one, prompts))
        assert alone == together
    finally:
        assert s.stop() == 0
