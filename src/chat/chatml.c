/*
 * chatml.c - plain ChatML rendering, as the Qwen templates render plain text
 * turns (MODELS.md §8): the plugins' format_chat when a model ships no
 * chat template (see chat_template.h).
 */
#include "pio/chat_template.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

pio_status pio_chatml_format(const char *json_in, char **json_out)
{
    cJSON *in = cJSON_Parse(json_in), *msgs, *m, *out = NULL;
    size_t cap = 256, len = 0;
    char *buf = NULL;
    pio_status st = PIO_STATUS_OK;

    if (!in)
        return pio_error(PIO_STATUS_ERR_FORMAT, "chatml: request is not valid JSON");
    msgs = cJSON_GetObjectItemCaseSensitive(in, "messages");
    if (!cJSON_IsArray(msgs)) {
        st = pio_error(PIO_STATUS_ERR_FORMAT, "chatml: \"messages\" must be an array");
        goto done;
    }
    buf = malloc(cap);
    if (!buf)
        goto nomem;
    buf[0] = '\0';
    cJSON_ArrayForEach(m, msgs) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        size_t need;
        if (!cJSON_IsString(role) || !cJSON_IsString(content)) {
            st = pio_error(PIO_STATUS_ERR_FORMAT,
                           "chatml: each message needs string \"role\" and \"content\"");
            goto done;
        }
        need = len + strlen(role->valuestring) + strlen(content->valuestring) + 32;
        if (need > cap) {
            char *nb = realloc(buf, need * 2);
            if (!nb)
                goto nomem;
            buf = nb;
            cap = need * 2;
        }
        len += (size_t)snprintf(buf + len, cap - len, "<|im_start|>%s\n%s<|im_end|>\n",
                                role->valuestring, content->valuestring);
    }
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(in, "add_generation_prompt"))) {
        if (len + 32 > cap) {
            char *nb = realloc(buf, len + 64);
            if (!nb)
                goto nomem;
            buf = nb;
            cap = len + 64;
        }
        len += (size_t)snprintf(buf + len, cap - len, "<|im_start|>assistant\n");
    }
    out = cJSON_CreateObject();
    if (!out || !cJSON_AddStringToObject(out, "prompt", buf))
        goto nomem;
    *json_out = cJSON_PrintUnformatted(out);
    if (!*json_out)
        goto nomem;
    goto done;
nomem:
    st = pio_error(PIO_STATUS_ERR_NOMEM, "chatml: out of memory");
done:
    cJSON_Delete(out);
    cJSON_Delete(in);
    free(buf);
    return st;
}
