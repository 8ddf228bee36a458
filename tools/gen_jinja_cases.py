#!/usr/bin/env python3
"""Expected renderings for tests/test_jinja.c, made with Python Jinja2
configured as transformers configures it (ImmutableSandboxedEnvironment,
trim_blocks, lstrip_blocks, loopcontrols, tojson = json.dumps with
ensure_ascii=False, raise_exception). Prints the C table that sits between
the GENERATED markers of tests/test_jinja.c:

    python3 tools/gen_jinja_cases.py > /tmp/cases.inc

A case whose render raises is recorded with expected NULL (pio must fail).
Needs jinja2 (the test itself does not).
"""
import json
import sys

from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def raise_exception(msg):
    raise ValueError(msg)


env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception

MSGS = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi <b>'there'</b>"},
        {"role": "assistant", "content": "Hello!", "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1, "y": "é\n"}}}]},
        {"role": "user", "content": "  spaced\tout  "}]
CTX = {"messages": MSGS, "n": 3, "s": "Hello, World", "xs": [3, 1, 2], "d": {"b": 2, "a": 1, "c": [1, 2]},
       "f": 2.5, "t": True, "no": False, "nil": None, "u8": "héllo wörld ✓", "empty": "", "el": []}

CASES = [
    # text and whitespace control
    ("plain text\n", {}),
    ("a\n{% if true %}\nb\n{% endif %}\nc", {}),
    ("  {% if true %}\n  x\n  {% endif %}\n", {}),
    ("a {%- if true -%} b {%- endif -%} c", {}),
    ("a  {{- 'x' -}}  b", {}),
    ("a {%+ if true %}b{% endif %}", {}),
    ("{% if true +%}\nb{% endif %}", {}),
    ("x {# comment #}\ny\n  {# c2 #}\nz", {}),
    ("{{ 'x' }}\n{{ 'y' }}\n", {}),
    ("line1\r\nline2\r\n{% if 1 %}\r\nz{% endif %}", {}),
    # literals and operators
    ("{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 7 / 2 }} {{ 4 / 2 }}", {}),
    ("{{ 1.5 + 1 }} {{ 0.1 + 0.2 }} {{ 1e20 }} {{ 1.0e-5 }} {{ 123456789.0 }} {{ 1e16 }} {{ 3.0 }} {{ -0.0 }}", {}),
    ("{{ 'a' ~ 1 ~ none ~ true }} {{ 'a' + 'b' }} {{ [1] + [2, 3] }} {{ 'ab' * 3 }}", {}),
    ("{{ 'it''s' }} {{ \"q\\\"d\" }} {{ 'tab\\there' }} {{ '\\u00e9\\x41' }} {{ 'a' 'b' }}", {}),
    ("{{ [1, 'a', none, true, 1.5, [2], {'k': 'v'}] }}", {}),
    ("{{ {'a': 1, 'b': [1, 2]} }} {{ (1, 2) }} {{ (1,) }} {{ () }}", {}),
    ("{{ 1 == 1.0 }} {{ 1 != 2 }} {{ 'a' < 'b' }} {{ 2 >= 3 }} {{ [1, 2] < [1, 3] }} {{ 1 < 2 < 3 }} {{ true == 1 }}", {}),
    ("{{ 'b' in 'abc' }} {{ 2 in [1, 2] }} {{ 'a' in {'a': 1} }} {{ 'z' not in 'abc' }} {{ not 1 }}", {}),
    ("{{ 0 or 'x' }} {{ 1 and 'y' }} {{ '' and 'z' }} {{ none or [] }}", {}),
    ("{{ 'y' if t else 'n' }} {{ 'y' if no else 'n' }} [{{ 'y' if no }}]", CTX),
    ("{{ -n }} {{ +n }} {{ - -n }} {{ n|string + '!' }}", CTX),
    # variables, attributes, items, undefined
    ("{{ messages[0].role }} {{ messages[1]['content'] }} {{ messages[-1].content }} {{ d.a }} {{ d['c'][1] }}", CTX),
    ("[{{ missing }}] [{{ d.missing }}] [{{ missing is defined }}] [{{ d.zz is undefined }}] [{{ missing|length }}]", CTX),
    ("{{ messages[9] is defined }} {{ s[0] }}{{ s[-1] }} {{ u8[1] }} {{ d.items is callable }}", CTX),
    ("{% for x in missing %}x{% else %}empty{% endfor %}", {}),
    # slicing
    ("{{ xs[::-1] }} {{ xs[1:] }} {{ xs[:-1] }} {{ s[::2] }} {{ s[7:] }} {{ u8[::-1] }} {{ xs[5:] }} {{ xs[-10:1] }}", CTX),
    ("{{ messages[1:]|length }} {{ 'abcdef'[1:5:2] }} {{ 'abc'[::-2] }}", CTX),
    # if / elif / else
    ("{% if n > 5 %}big{% elif n > 2 %}mid{% elif n > 0 %}small{% else %}neg{% endif %}", CTX),
    ("{% if empty %}a{% elif el %}b{% else %}c{% endif %}", CTX),
    # for loops
    ("{% for m in messages %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}/{{ loop.first }}/{{ loop.last }}/{{ loop.length }} {% endfor %}", CTX),
    ("{% for m in messages %}{{ loop.previtem.role if loop.previtem is defined else '-' }}>{{ loop.nextitem.role if not loop.last else '-' }} {% endfor %}", CTX),
    ("{% for m in messages if m.role == 'user' %}{{ loop.index }}:{{ m.content|trim }};{% endfor %}", CTX),
    ("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %} {% for k, v in d|items %}{{ k }};{% endfor %} {% for k in d %}{{ k }}{% endfor %}", CTX),
    ("{% for c in 'hé!' %}[{{ c }}]{% endfor %}", {}),
    ("{% for i in range(5) %}{% if i == 1 %}{% continue %}{% endif %}{% if i == 3 %}{% break %}{% endif %}{{ i }}{% endfor %}", {}),
    ("{% for i in range(3) %}{% for j in range(2) %}{{ loop.index }}{{ i }}{{ j }}{{ loop.depth }} {% endfor %}{% endfor %}", {}),
    ("{% for i in range(1, 10, 3) %}{{ i }}{{ loop.cycle('a', 'b') }} {% endfor %}{{ range(3)|list }} {{ range(5, 0, -2)|list }}", {}),
    ("{% for x in el %}x{% else %}none{% endfor %}", CTX),
    ("{% set x = 1 %}{% for i in range(2) %}{% set x = x + 10 %}{{ x }} {% endfor %}{{ x }}", {}),
    ("{% for a, b in [[1, 2], (3, 4)] %}{{ a }}{{ b }}{% endfor %}", {}),
    # set, namespace
    ("{% set a = 'x' %}{% set b = a ~ 'y' %}{{ a }}{{ b }}{% if true %}{% set c = 3 %}{% endif %}{{ c }}", {}),
    ("{% set ns = namespace(count=0, last=none) %}{% for m in messages %}{% set ns.count = ns.count + 1 %}{% set ns.last = m.role %}{% endfor %}{{ ns.count }} {{ ns.last }}", CTX),
    ("{% set body %}Hello {{ 'block' }}{% endset %}[{{ body }}]{% set up | upper %}shout{% endset %}{{ up }}", {}),
    ("{% set t = 1, 2 %}{{ t }}", {}),
    # macros and call
    ("{% macro greet(name, greeting='Hi') %}{{ greeting }}, {{ name }}!{% endmacro %}{{ greet('Ann') }} {{ greet('Bo', greeting='Yo') }} {{ greet(name='Cy') }}", {}),
    ("{% macro m(x) %}[{{ x }}|{{ y }}]{% endmacro %}{% set y = 'late' %}{{ m() }}", {}),
    ("{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}inner {{ 1 + 1 }}{% endcall %}", {}),
    ("{% macro rec(n) %}{% if n > 0 %}{{ n }}{{ rec(n - 1) }}{% endif %}{% endmacro %}{{ rec(5) }}", {}),
    ("{% macro vt(c) %}{% if c is string %}{{ c }}{% else %}{% for p in c %}{{ p.text }}{% endfor %}{% endif %}{% endmacro %}{{ vt('s') }}|{{ vt([{'text': 'a'}, {'text': 'b'}]) }}", {}),
    # filters
    ("{{ messages|tojson }}", CTX),
    ("{{ d|tojson(indent=2) }}|{{ {'k': [1, {'z': none}], 'e': {}, 'l': []}|tojson(indent=4) }}|{{ 'é\"\\\\\\n\\t\\u0001'|tojson }}", CTX),
    ("{{ u8|tojson }} {{ u8|tojson(ensure_ascii=True) }} {{ d|tojson(sort_keys=True) }} {{ f|tojson }} {{ t|tojson }} {{ nil|tojson }}", CTX),
    ("[{{ '  x y \\n'|trim }}] [{{ 'xxhixx'|trim('x') }}] {{ s|length }} {{ u8|length }} {{ xs|count }} {{ d|length }}", CTX),
    ("{{ s|upper }} {{ s|lower }} {{ 'hello wORLD-foo(bar'|title }} {{ 'hELLO'|capitalize }} {{ u8|upper }}", CTX),
    ("{{ xs|join(', ') }} {{ xs|first }} {{ xs|last }} {{ s|first }} {{ xs|reverse|list }} {{ s|reverse }} {{ xs|sort }} {{ xs|sort(reverse=true) }}", CTX),
    ("{{ missing|default('dflt') }} {{ empty|default('e') }} {{ empty|default('e', true) }} {{ nil|d('n', boolean=true) }}", CTX),
    ("{{ messages|selectattr('role', 'equalto', 'user')|map(attribute='content')|join('|') }}", CTX),
    ("{{ messages|rejectattr('role', 'in', ['user', 'system'])|map(attribute='role')|list }} {{ messages|map(attribute='tool_calls', default='-')|list|length }}", CTX),
    ("{{ [1, 0, 2, none]|select|list }} {{ [1, 2, 3, 4]|reject('odd')|list }} {{ ['a', 'B']|map('upper')|list }} {{ [1,2,3]|select('gt', 1)|list }}", {}),
    ("{{ '42'|int + 1 }} {{ '3.9'|int }} {{ 'x'|int(7) }} {{ 3.9|int }} {{ '2.5'|float }} {{ 2|float }} {{ 'x'|float }} {{ true|int }}", {}),
    ("{{ xs|list }} {{ 'ab'|list }} {{ d|list }} {{ [3, 1, 3, 2, 1]|unique|list }} {{ ['a', 'A', 'b']|unique|list }}", CTX),
    ("{{ 3|string ~ 'x' }} {{ [1, 'a']|string }} {{ none|string }} {{ f|string }} {{ d|string }}", CTX),
    ("{{ s|replace('l', 'L') }} {{ s|replace('l', 'L', 2) }} {{ -3|abs }} {{ 2.567|round(2) }} {{ 2.5|round }} {{ [1, 2, 3]|sum }} {{ xs|min }} {{ xs|max }}", CTX),
    ("{{ 'a\\nb\\n\\nc'|indent(2) }}|{{ 'a\\nb'|indent(2, true) }}|{{ 'x\\n'|indent }}", {}),
    ("{{ d|dictsort }} {{ messages[0]|items|list }} {{ '<a&b>'|e }} {{ 'x'|safe }} {{ d|attr('a') }}", CTX),
    # methods
    ("{{ s.startswith('Hell') }} {{ s.endswith('x') }} {{ s.startswith(('x', 'H')) }} {{ s.split(', ') }} {{ ' a  b '.split() }} {{ 'a,b,c'.split(',', 1) }} {{ 'a,b,c'.rsplit(',', 1) }}", CTX),
    ("[{{ '  x  '.strip() }}] [{{ '\\n\\nx\\n'.lstrip('\\n') }}] [{{ 'xyx'.rstrip('x') }}] {{ s.replace('o', '0') }} {{ s.upper() }} {{ s.lower() }} {{ 'ab cd'.title() }} {{ 'aBC'.capitalize() }}", CTX),
    ("{{ s.find('o') }} {{ s.rfind('o') }} {{ s.count('l') }} {{ '-'.join(['a', 'b']) }} {{ 'a\\nb'.splitlines() }} {{ '12'.isdigit() }} {{ 'ab'.isalpha() }} {{ 'pre_x'.removeprefix('pre_') }}", CTX),
    ("{{ d.keys()|list }} {{ d.values()|list }} {{ d.get('a') }} {{ d.get('zz', 'dflt') }} {{ d.get('zz') }} {{ xs.index(1) }} {{ xs.count(3) }}", CTX),
    ("{% set c = messages[2].content ~ '<think>r</think>\\n\\nans' %}{{ c.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') }}|{{ c.split('</think>')[-1].lstrip('\\n') }}", CTX),
    ("{{ 'a,b,,c'.rsplit(',') }} {{ 'aaa'.rsplit('aa') }} {{ 'aaa'.split('aa') }} {{ 'xxhixyx'.strip('xy') }} {{ 'h\u00e9\u00e9'.rstrip('\u00e9') }} {{ 'abcabc'.rfind('bc') }}", {}),
    # tests
    ("{{ s is string }} {{ xs is string }} {{ d is mapping }} {{ xs is mapping }} {{ xs is iterable }} {{ s is iterable }} {{ n is iterable }} {{ xs is sequence }} {{ d is sequence }}", CTX),
    ("{{ n is number }} {{ f is number }} {{ t is number }} {{ n is integer }} {{ f is float }} {{ t is boolean }} {{ nil is none }} {{ n is none }} {{ t is true }} {{ no is false }} {{ 1 is true }}", CTX),
    ("{{ n is odd }} {{ n is even }} {{ 9 is divisibleby 3 }} {{ n is eq 3 }} {{ n is gt(2) }} {{ 'ab' is lower }} {{ 'AB' is upper }} {{ range is callable }} {{ n is not none }} {{ 'a' is in 'cat' }}", CTX),
    ("{{ missing is undefined }} {{ missing is defined }} {{ missing is none }} {{ missing is string }} {{ missing is iterable }}", {}),
    # raise_exception
    ("{% if false %}{{ raise_exception('never') }}{% endif %}ok", {}),
    # errors (jinja2 raises; pio must fail)
    ("{{ raise_exception('Only user and assistant roles are supported!') }}", {}),
    ("{{ missing + 1 }}", {}),
    ("{{ missing.attr }}", {}),
    ("{{ missing() }}", {}),
    ("{{ 'a' + 1 }}", {}),
    ("{{ 1 / 0 }}", {}),
    ("{% for k in 'abc'|items %}{% endfor %}", {}),
    ("{{ el.startswith('x') }}", CTX),
    ("{{ s.items() }}", CTX),
    ("{{ nil|tojson ~ missing|tojson }}", CTX),
    ("{{ 1 < 'a' }}", {}),
    ("{% for a, b in [[1, 2, 3]] %}{% endfor %}", {}),
    ("{% set x = 1 %}{% set x.y = 2 %}", {}),
    ("{{ xs.append(4) }}", CTX),
    ("{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}", {}),
]


def c_str(s):
    out = []
    for ch in s.encode("utf-8"):
        c = chr(ch)
        if c == "\\": out.append("\\\\")
        elif c == '"': out.append('\\"')
        elif c == "\n": out.append("\\n")
        elif c == "\r": out.append("\\r")
        elif c == "\t": out.append("\\t")
        elif 0x20 <= ch < 0x7F: out.append(c)
        else: out.append('\\%03o' % ch)
    return '"' + "".join(out) + '"'


def main():
    print("/* GENERATED by tools/gen_jinja_cases.py (Jinja2 %s): template, context, expected or NULL */"
          % __import__("jinja2").__version__)
    print("#define CTX %s" % c_str(json.dumps(CTX, ensure_ascii=False)))
    print("static const struct jinja_case { const char *tpl, *ctx, *want; } jinja_cases[] = {")
    for tpl, ctx in CASES:
        try:
            exp = env.from_string(tpl).render(**ctx)
        except Exception as e:  # noqa: BLE001 - any raise is an expected failure
            exp = None
            print("    /* raises %s: %s */" % (type(e).__name__, str(e).replace("*/", "* /")[:100]))
        ctxs = json.dumps(ctx, ensure_ascii=False) if ctx is not CTX else "CTX"
        print("    { %s,\n      %s,\n      %s },"
              % (c_str(tpl), ctxs if ctxs == "CTX" else c_str(ctxs), "NULL" if exp is None else c_str(exp)))
    print("};")


if __name__ == "__main__":
    sys.exit(main())
