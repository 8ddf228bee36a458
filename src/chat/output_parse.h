/*
 * output_parse.h - turn a model's generated text back into content,
 * reasoning and tool calls, incrementally, as tokens stream out.
 *
 * The parser is fed decoded text in chunks of any size (one byte at a time
 * or the whole reply) and reports events: content and reasoning deltas,
 * tool-call start (id, name), tool-call argument deltas (JSON text, as an
 * OpenAI stream sends `function.arguments`) and tool-call end. The events
 * and the final result depend only on the concatenated text, never on how
 * it was chunked: text that might be the start of a tag ("<tool" at the end
 * of a chunk) is held back until the next chunk decides it, and released by
 * pio_output_parser_finish at the end of the stream.
 *
 * Formats (the models' own chat templates show them; MODELS.md §8):
 *   QWEN3_JSON  <tool_call>\n{"name": N, "arguments": {...}}\n</tool_call>
 *               (Qwen3, Qwen3-2507, Qwen3-VL). The block is parsed when it
 *               closes: start, one argument delta and end come together.
 *   QWEN3_XML   <tool_call>\n<function=N>\n<parameter=K>\nV\n</parameter>\n
 *               ...</function>\n</tool_call> (Qwen3-Coder). Start comes at
 *               `<function=N>`.
 *   GLM47       <tool_call>N<arg_key>K</arg_key><arg_value>V</arg_value>...
 *               </tool_call> (GLM-4.5/4.6/4.7). Start comes at the first
 *               `<arg_key>` (or at </tool_call> for a call without arguments).
 *               In both XML forms a value whose schema type is string streams
 *               as it is written (`{"K":"` then escaped text, then `"`); other
 *               values come as one delta when they end, since they are parsed
 *               whole.
 * `<think>...</think>` is reasoning in every format. Where the prompt itself
 * ends with `<think>` (GLM-4.7, Qwen3 "thinking" templates), set
 * start_in_reasoning: the output then starts inside the reasoning.
 *
 * Values of the XML formats are typed with the tool's JSON schema (the
 * `tools` list given to the chat template), as vLLM's qwen3_coder and glm4
 * parsers do: a parameter typed string stays the raw text; integer, number,
 * boolean (also Python's True/False), null, object and array are parsed as
 * JSON; a parameter with no schema is JSON if it parses, else a string. A
 * value that does not fit its type stays a string, with a warning. In the
 * Qwen3-Coder form one newline after `<parameter=K>` and one before
 * `</parameter>` belong to the layout, not to the value; GLM values are
 * taken as they are.
 *
 * Layout newlines are dropped: newlines right after `<think>`, `</think>`
 * and `</tool_call>`, and right before `</think>` and `<tool_call>`.
 *
 * Malformed output never fails the parse; each case below falls back as
 * stated and adds a warning (an event, and a line in the result):
 *   - a Qwen3 block that is not a JSON object with a string "name" (and an
 *     object "arguments" or "parameters", or a string holding one): the whole
 *     block, tags included, becomes content;
 *   - a Qwen3-Coder block that holds a Qwen3 JSON call instead of the XML
 *     form: parsed as JSON (as above);
 *   - an XML block with no function name (or a name that is not one line of
 *     at most 256 bytes): the whole block becomes content;
 *   - a missing `</parameter>`: the value ends at the next `<parameter=`,
 *     `</function>` or `</tool_call>` that starts a line (mid-line they are
 *     part of the value, as in code); a missing `</arg_value>`: the value
 *     ends at the next `<arg_key>` or `</tool_call>`; text between
 *     parameters is dropped;
 *   - a function name that is not in `tools` (when tools are given): the
 *     call is kept as it is;
 *   - the stream ends inside a tool call: a call already started is closed
 *     with what was read; a Qwen3 block that parses is kept; otherwise the
 *     raw text becomes content. Ending inside <think> keeps the reasoning.
 *
 * Deltas of one kind concatenated equal the result's field of that kind:
 * content, reasoning, and each call's arguments (a JSON object text,
 * printed compactly by cJSON).
 *
 * Cost: linear in the text, plus a rescan of at most the held-back tail
 * (the length of the longest tag) per chunk.
 */
#ifndef PIO_CHAT_OUTPUT_PARSE_H
#define PIO_CHAT_OUTPUT_PARSE_H

#include "pio/pio.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum pio_tool_format {
    PIO_TOOL_FORMAT_NONE = 0,    /* reasoning only; `<tool_call>` is content */
    PIO_TOOL_FORMAT_QWEN3_JSON,
    PIO_TOOL_FORMAT_QWEN3_XML,
    PIO_TOOL_FORMAT_GLM47,
} pio_tool_format;

/*
 * The format named by `name`: an explicit format ("none", "qwen3"/"json"/
 * "hermes", "qwen3_coder"/"qwen3_xml"/"xml", "glm", "glm45", "glm47"), a
 * plugin or model_type ("qwen3", "qwen3_moe", "qwen3_vl", "glm4_moe",
 * "glm4_moe_lite") or an HF architecture ("Qwen3MoeForCausalLM", ...),
 * case-insensitive. Returns -1 for an unknown name. qwen3_moe maps to JSON
 * (Qwen3-30B-A3B); Qwen3-Coder shares that architecture, so prefer
 * pio_tool_format_from_template when the template is at hand.
 */
int pio_tool_format_from_name(const char *name);

/*
 * The format a chat template teaches its model: `<function=` -> QWEN3_XML,
 * `<arg_key>` -> GLM47, `<tool_call>` -> QWEN3_JSON, else -1 (unknown).
 */
int pio_tool_format_from_template(const char *template_text);

/* "none", "qwen3_json", "qwen3_xml", "glm47". */
const char *pio_tool_format_name(pio_tool_format f);

/*
 * True when `prompt` ends with `<think>` (then only whitespace): the model's
 * output starts inside its reasoning. Such prompts come from GLM-4.7 and
 * thinking templates; a prompt ending `<think>\n\n</think>\n\n` does not.
 */
bool pio_output_prompt_opens_reasoning(const char *prompt);

typedef struct pio_output_parse_params {
    pio_tool_format format;
    bool parse_reasoning;        /* split <think>...</think> (default true) */
    bool start_in_reasoning;     /* the prompt ended with <think> (default false) */
    const char *tools_json;      /* OpenAI tools array (JSON text) for value types, or NULL */
    const char *id_prefix;       /* tool-call ids are id_prefix + index (default "call_") */
} pio_output_parse_params;

void pio_output_parse_params_default(pio_output_parse_params *p);

typedef enum pio_output_event_type {
    PIO_OUTPUT_EVENT_CONTENT = 0,       /* text: a content delta */
    PIO_OUTPUT_EVENT_REASONING,         /* text: a reasoning delta */
    PIO_OUTPUT_EVENT_TOOL_CALL_START,   /* index, id, name */
    PIO_OUTPUT_EVENT_TOOL_CALL_ARGS,    /* index, text: an arguments JSON delta */
    PIO_OUTPUT_EVENT_TOOL_CALL_END,     /* index, id, name, text: the whole arguments */
    PIO_OUTPUT_EVENT_WARNING,           /* text: what was malformed and the fallback taken */
} pio_output_event_type;

typedef struct pio_output_event {
    pio_output_event_type type;
    int index;                   /* tool call index (0, 1, ...) or -1 */
    const char *id;              /* tool call id, or NULL */
    const char *name;            /* function name, or NULL */
    const char *text;            /* delta / arguments / warning (not NUL-terminated) */
    size_t len;
} pio_output_event;

/* Receives each event; pointers are valid only during the call. */
typedef void (*pio_output_event_fn)(void *user, const pio_output_event *ev);

typedef struct pio_tool_call {
    char *id;                    /* "call_0", ... */
    char *name;
    char *arguments;             /* JSON object text */
} pio_tool_call;

/* The whole reply, owned by the parser (valid until it is freed). */
typedef struct pio_output_result {
    const char *content;         /* NUL-terminated; "" when none */
    size_t content_len;
    const char *reasoning;
    size_t reasoning_len;
    const pio_tool_call *calls;
    int n_calls;
    const char *const *warnings; /* n_warnings NUL-terminated lines */
    int n_warnings;
} pio_output_result;

typedef struct pio_output_parser pio_output_parser;

/*
 * A parser for one reply. Fails with PIO_STATUS_ERR_FORMAT when tools_json
 * is not a JSON array, PIO_STATUS_ERR_INVALID_ARG for an unknown format.
 */
pio_status pio_output_parser_new(const pio_output_parse_params *params, pio_output_parser **out);
void pio_output_parser_free(pio_output_parser *p);

/*
 * Feed `len` bytes of generated text; events go to `cb` (may be NULL).
 * Fails only when out of memory (or after finish).
 */
pio_status pio_output_parser_feed(pio_output_parser *p, const char *text, size_t len,
                                  pio_output_event_fn cb, void *user);

/* End of stream: release held text, close what is open (see above). */
pio_status pio_output_parser_finish(pio_output_parser *p, pio_output_event_fn cb, void *user);

/* The reply so far (complete after finish). */
const pio_output_result *pio_output_parser_result(const pio_output_parser *p);

/*
 * One-shot helper: parse a whole reply and return its result as JSON
 * {"content","reasoning_content","tool_calls":[{"id","type":"function",
 * "function":{"name","arguments"}}],"warnings":[...]} (malloc'ed).
 */
pio_status pio_output_parse_to_json(const pio_output_parse_params *params, const char *text,
                                    size_t len, char **json);

#ifdef __cplusplus
}
#endif

#endif /* PIO_CHAT_OUTPUT_PARSE_H */
