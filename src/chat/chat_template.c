/*
 * chat_template.c - load a model directory's chat template and render it
 * with a JSON context (include/pio/chat_template.h).
 */
#include "pio/chat_template.h"

#include "chat/jinja.h"
#include "formats/formats_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Templates and their config files are small; refuse anything huge. */
#define CHAT_TEMPLATE_MAX_FILE ((size_t)16 << 20)

struct pio_chat_template {
    pio_jinja *jinja;
    char *source;
    cJSON *tokens;          /* {"bos_token": "...", ...} added to contexts */
};

static const char *const special_token_keys[] = { "bos_token", "eos_token", "unk_token", "pad_token" };

pio_status pio_chat_template_parse(const char *src, size_t len, const char *name, pio_chat_template **out)
{
    pio_status st;
    pio_chat_template *t = calloc(1, sizeof *t);
    *out = NULL;
    if (!t) return pio_error(PIO_STATUS_ERR_NOMEM, "out of memory");
    t->source = malloc(len + 1);
    t->tokens = cJSON_CreateObject();
    if (!t->source || !t->tokens) {
        st = pio_error(PIO_STATUS_ERR_NOMEM, "out of memory");
        goto free_t;
    }
    memcpy(t->source, src, len);
    t->source[len] = '\0';
    st = pio_jinja_parse(src, len, name, &t->jinja);
    if (st) goto free_t;
    *out = t;
    return PIO_STATUS_OK;
free_t:
    pio_chat_template_free(t);
    return st;
}

static bool file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Read dir/name as JSON into *out; ERR_MISSING when the file is absent. */
static pio_status read_json(const char *dir, const char *name, cJSON **out)
{
    char *path = pio_fmt_path_join(dir, name), *text = NULL;
    size_t len;
    pio_status st;
    *out = NULL;
    if (!path) return pio_error(PIO_STATUS_ERR_NOMEM, "out of memory");
    if (!file_exists(path)) {
        st = pio_error(PIO_STATUS_ERR_MISSING, "%s: not found", path);
        goto free_path;
    }
    st = pio_fmt_read_file(path, CHAT_TEMPLATE_MAX_FILE, &text, &len);
    if (!st) st = pio_fmt_json_parse_named(text, len, path, out);
    free(text);
free_path:
    free(path);
    return st;
}

/* The "chat_template" value of a config: a string, or [{name, template}] -> "default". */
static const char *pick_template(const cJSON *v)
{
    if (cJSON_IsString(v)) return v->valuestring;
    if (!cJSON_IsArray(v)) return NULL;
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(e, "name");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(e, "template");
        if (cJSON_IsString(n) && !strcmp(n->valuestring, "default") && cJSON_IsString(t)) return t->valuestring;
    }
    return NULL;
}

pio_status pio_chat_template_load(const char *model_dir, pio_chat_template **out)
{
    pio_status st;
    cJSON *tokcfg = NULL, *procfg = NULL;
    char *path = NULL, *text = NULL;
    size_t len = 0;
    const char *src = NULL, *name = NULL;
    *out = NULL;

    st = read_json(model_dir, "tokenizer_config.json", &tokcfg);
    if (st && st != PIO_STATUS_ERR_MISSING) goto done;
    path = pio_fmt_path_join(model_dir, "chat_template.jinja");
    if (!path) { st = pio_error(PIO_STATUS_ERR_NOMEM, "out of memory"); goto done; }
    if (file_exists(path)) {
        st = pio_fmt_read_file(path, CHAT_TEMPLATE_MAX_FILE, &text, &len);
        if (st) goto done;
        src = text;
        name = "chat_template.jinja";
    } else {
        st = read_json(model_dir, "chat_template.json", &procfg);
        if (st && st != PIO_STATUS_ERR_MISSING) goto done;
        const char *s = procfg ? pick_template(cJSON_GetObjectItemCaseSensitive(procfg, "chat_template")) : NULL;
        if (s) {
            src = s;
            name = "chat_template.json";
        } else if (tokcfg && (s = pick_template(cJSON_GetObjectItemCaseSensitive(tokcfg, "chat_template")))) {
            src = s;
            name = "tokenizer_config.json:chat_template";
        }
        len = src ? strlen(src) : 0;
    }
    if (!src) {
        st = pio_error(PIO_STATUS_ERR_MISSING, "%s: no chat template (chat_template.jinja or tokenizer_config.json)",
                       model_dir);
        goto done;
    }
    st = pio_chat_template_parse(src, len, name, out);
    if (st || !tokcfg) goto done;
    for (size_t i = 0; i < sizeof special_token_keys / sizeof special_token_keys[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(tokcfg, special_token_keys[i]);
        if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content");
        if (cJSON_IsString(v) && pio_chat_template_set_default(*out, special_token_keys[i], v->valuestring)) {
            pio_chat_template_free(*out);
            *out = NULL;
            st = pio_error(PIO_STATUS_ERR_NOMEM, "out of memory");
            goto done;
        }
    }
done:
    free(text);
    free(path);
    cJSON_Delete(tokcfg);
    cJSON_Delete(procfg);
    return st;
}

pio_status pio_chat_template_render(const pio_chat_template *t, const char *context_json, char **out)
{
    pio_status st;
    cJSON *ctx = NULL;
    size_t off;
    *out = NULL;
    if (!pio_fmt_json_parse(context_json, strlen(context_json), &ctx, &off))
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "chat template context: invalid JSON at byte %zu", off);
    if (!cJSON_IsObject(ctx)) {
        st = pio_error(PIO_STATUS_ERR_INVALID_ARG, "chat template context must be a JSON object");
        goto free_ctx;
    }
    for (const cJSON *tok = t->tokens->child; tok; tok = tok->next) {
        if (cJSON_GetObjectItemCaseSensitive(ctx, tok->string)) continue;
        if (!cJSON_AddStringToObject(ctx, tok->string, tok->valuestring)) {
            st = pio_error(PIO_STATUS_ERR_NOMEM, "out of memory");
            goto free_ctx;
        }
    }
    st = pio_jinja_render(t->jinja, ctx, NULL, out, NULL);
free_ctx:
    cJSON_Delete(ctx);
    return st;
}

pio_status pio_chat_template_set_default(pio_chat_template *t, const char *key, const char *value)
{
    cJSON *v = cJSON_CreateString(value);
    if (!v) return pio_error(PIO_STATUS_ERR_NOMEM, "out of memory");
    cJSON_DeleteItemFromObjectCaseSensitive(t->tokens, key);
    cJSON_AddItemToObject(t->tokens, key, v);
    return PIO_STATUS_OK;
}

const char *pio_chat_template_source(const pio_chat_template *t) { return t->source; }

void pio_chat_template_free(pio_chat_template *t)
{
    if (!t) return;
    pio_jinja_free(t->jinja);
    free(t->source);
    cJSON_Delete(t->tokens);
    free(t);
}
