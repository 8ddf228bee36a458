/*
 * chat_template.h - a model's own Jinja chat template, rendered as Hugging
 * Face transformers renders it (Python Jinja2 with trim_blocks and
 * lstrip_blocks, tojson without ASCII escaping).
 *
 * The template comes from the model directory: chat_template.jinja, else
 * chat_template.json's "chat_template", else tokenizer_config.json's
 * "chat_template" (a string, or a list of {name, template} of which
 * "default" is used). bos_token / eos_token / unk_token / pad_token of
 * tokenizer_config.json (strings or {"content": ...}) are added to every
 * render context that does not set them.
 */
#ifndef PIO_CHAT_TEMPLATE_H
#define PIO_CHAT_TEMPLATE_H

#include "pio/pio.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pio_chat_template pio_chat_template;

/*
 * Load model_dir's chat template. PIO_STATUS_ERR_MISSING (and *out NULL)
 * when the directory has none; ERR_FORMAT with line:column when it does
 * not parse (or uses a construct the engine does not support).
 */
pio_status pio_chat_template_load(const char *model_dir, pio_chat_template **out);

/* A template from text src[0..len); `name` appears in error messages. */
pio_status pio_chat_template_parse(const char *src, size_t len, const char *name,
                                   pio_chat_template **out);

/*
 * Render with the JSON object context_json, e.g. {"messages": [...],
 * "tools": [...], "add_generation_prompt": true, "enable_thinking": false};
 * every key is a template variable. *out is malloc'ed and NUL-terminated.
 * A template that raises (raise_exception, an undefined in arithmetic...)
 * or exceeds the render limits fails with a message giving line:column.
 */
pio_status pio_chat_template_render(const pio_chat_template *t, const char *context_json, char **out);

/*
 * A string variable added to every render context that does not set `key`
 * itself (the loader sets bos_token/eos_token this way; so does a GGUF model).
 */
pio_status pio_chat_template_set_default(pio_chat_template *t, const char *key, const char *value);

/* The template's source text (NUL-terminated). */
const char *pio_chat_template_source(const pio_chat_template *t);

void pio_chat_template_free(pio_chat_template *t);

/*
 * Plain ChatML, the fallback format of the Qwen families when a model has no
 * chat template: "<|im_start|>ROLE\nCONTENT<|im_end|>\n" per message, then
 * "<|im_start|>assistant\n" when add_generation_prompt. context_json is a
 * render context ({"messages": [{role, content}], "add_generation_prompt"});
 * *json_out (malloc'ed) is {"prompt": "..."}, the format_chat reply of a plugin.
 */
pio_status pio_chatml_format(const char *context_json, char **json_out);

#ifdef __cplusplus
}
#endif

#endif /* PIO_CHAT_TEMPLATE_H */
