/*
 * fuzz_jinja.c - libFuzzer target for the Jinja chat-template engine.
 * The input is a template: it must either be refused with a status and a
 * message, or render (within small limits on steps, depth, output and
 * memory) against a fixed chat context to a result of at most the output
 * limit, or fail with a message; never crash, hang, leak or overread.
 * Seeds: fuzz/seeds/jinja/; dictionary: -dict=fuzz/jinja.dict.
 */
#include "chat/jinja.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char fuzz_ctx[] =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"sys\"},"
    " {\"role\": \"user\", \"content\": \"hi <think>x</think> \\u00e9\"},"
    " {\"role\": \"assistant\", \"content\": \"ok\", \"reasoning_content\": \"r\","
    "  \"tool_calls\": [{\"function\": {\"name\": \"f\", \"arguments\": {\"a\": 1, \"b\": [true, null, 2.5]}}}]},"
    " {\"role\": \"tool\", \"content\": [{\"type\": \"text\", \"text\": \"t\"}]}],"
    " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"description\": \"d\","
    "  \"parameters\": {\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"integer\"}}}}}],"
    " \"add_generation_prompt\": true, \"enable_thinking\": false, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static cJSON *ctx;
    pio_jinja *t = NULL;
    pio_jinja_limits lim = { .max_steps = 200000, .max_depth = 200, .max_output = 1 << 20, .max_memory = 64 << 20 };
    char *out = NULL;
    size_t len = 0;
    if (!ctx && !(ctx = cJSON_Parse(fuzz_ctx))) abort();
    /* Own exact-size copy (no NUL after it): ASan sees any overread. */
    char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    pio_clear_error();
    if (pio_jinja_parse(buf, size, "fuzz", &t) == PIO_STATUS_OK) {
        if (pio_jinja_render(t, ctx, &lim, &out, &len) == PIO_STATUS_OK) {
            if (!out || len > lim.max_output || out[len] != '\0') abort();
        } else if (out || pio_last_error()[0] == '\0') {
            abort();   /* a failed render leaves no output and says why */
        }
        free(out);
        pio_jinja_free(t);
    } else if (t || pio_last_error()[0] == '\0') {
        abort();       /* a refused template leaves nothing and says why */
    }
    free(buf);
    return 0;
}
