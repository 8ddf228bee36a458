#!/usr/bin/env python3
"""Render assistant turns with tool calls and reasoning through the models'
official chat templates (../shared/data/chat_templates/) with Python jinja2,
as transformers does (trim_blocks, lstrip_blocks, tojson with
ensure_ascii=False), and write what the model would have generated after the
generation prompt as parser inputs, with the messages' own content, reasoning
and tool calls as the expected parse:

    python3 tools/gen_output_parse_fixtures.py > tests/fixtures/output_parse/renderings.json

Only the test-data generation needs jinja2; tests/test_output_parse.c reads
the JSON written here.
"""
import json
import os
import sys

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
TEMPLATES = os.path.join(ROOT, "..", "shared", "data", "chat_templates")


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def raise_exception(msg):
    raise jinja2.exceptions.TemplateError(msg)


ENV = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
ENV.filters["tojson"] = tojson
ENV.globals["raise_exception"] = raise_exception

TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather", "description": "Get the weather",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string"}, "days": {"type": "integer"}, "ratio": {"type": "number"},
            "detailed": {"type": "boolean"}, "opts": {"type": "object"}, "tags": {"type": "array"},
            "zip": {"type": "string"}},
            "required": ["city"]}}},
    {"type": "function", "function": {
        "name": "write_file", "description": "Write a file",
        "parameters": {"type": "object", "properties": {
            "path": {"type": "string"}, "content": {"type": "string"}}}}},
    {"type": "function", "function": {"name": "now", "description": "The time",
                                      "parameters": {"type": "object", "properties": {}}}},
]

CALL_WEATHER = {"name": "get_weather", "arguments": {
    "city": "Paris", "days": 3, "ratio": 2.5, "detailed": True, "opts": {"a": [1, 2], "b": None},
    "tags": ["x", "y"], "zip": "007"}}
CALL_WRITE = {"name": "write_file", "arguments": {
    "path": "src/a.c", "content": "int main(void)\n{\n    return 1 < 2 && 3 > 2; /* <parameter=x> */\n}\n\n  "}}
CALL_NOW = {"name": "now", "arguments": {}}
CALL_UNICODE = {"name": "get_weather", "arguments": {"city": "Zürich \"Kreis 1\" 東京", "extra": [1, "x"]}}

TURNS = [
    ("one_call", "Let me check.", None, [CALL_WEATHER]),
    ("no_content", "", None, [CALL_WRITE]),
    ("three_calls", "Calling three tools:\n\n- weather\n- file", None, [CALL_WEATHER, CALL_NOW, CALL_UNICODE]),
    ("no_args", "ok", None, [CALL_NOW]),
    ("reasoning_and_call", "I will look it up.", "The user wants weather.\nUse get_weather.", [CALL_WEATHER]),
    ("reasoning_only", "It is sunny.", "Just answer.", None),
    ("plain", "Hello there!\nHow can I help?", None, None),
]

# template, end-of-turn text, whether it shows reasoning_content
TEMPLATE_INFO = {
    "Qwen3-Coder-30B-A3B-Instruct.jinja": ("qwen3_xml", "<|im_end|>", False),
    "GLM-4.7-Flash.jinja": ("glm47", None, True),
    "qwen3-hybrid.jinja": ("qwen3_json", "<|im_end|>", True),
    "Qwen3-4B-Instruct-2507.jinja": ("qwen3_json", "<|im_end|>", False),
}


def render(tmpl, messages, **kw):
    return tmpl.render(messages=messages, tools=TOOLS, **kw)


def main():
    cases = []
    for fname, (fmt, eot, shows_reasoning) in TEMPLATE_INFO.items():
        tmpl = ENV.from_string(open(os.path.join(TEMPLATES, fname), encoding="utf-8").read())
        for name, content, reasoning, calls in TURNS:
            if reasoning and not shows_reasoning:
                continue
            user = {"role": "user", "content": "What is the weather in Paris?"}
            asst = {"role": "assistant", "content": content}
            if reasoning:
                asst["reasoning_content"] = reasoning
            if calls:
                asst["tool_calls"] = [{"type": "function", "function": c} for c in calls]
            for thinking in ([True, False] if fmt == "glm47" else [None]):
                kw = {} if thinking is None else {"enable_thinking": thinking}
                prompt = render(tmpl, [user], add_generation_prompt=True, **kw)
                full = render(tmpl, [user, asst], add_generation_prompt=False, **kw)
                if not full.startswith(prompt):
                    continue      # this rendering does not follow this generation prompt
                out = full[len(prompt):]
                if eot:
                    out = out[:out.index(eot)]
                cases.append({
                    "name": f"{fname}:{name}" + ("" if thinking is None else f":think={thinking}"),
                    "format": fmt,
                    "start_in_reasoning": prompt.rstrip().endswith("<think>"),
                    "input": out,
                    "content": content.strip(),
                    "reasoning": (reasoning or "") if shows_reasoning else "",
                    "tool_calls": [{"name": c["name"], "arguments": c["arguments"]} for c in (calls or [])],
                })
    json.dump({"tools": TOOLS, "cases": cases}, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
