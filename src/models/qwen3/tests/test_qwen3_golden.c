/*
 * test_qwen3_golden.c - the qwen3 plugin against transformers.
 *
 * For each tiny checkpoint in tests/fixtures/qwen3 (made by
 * tools/make_tiny_qwen3.py with transformers' own Qwen3ForCausalLM):
 *   - logits at every prompt position: max|Δ| <= 1e-4 · max|logit|;
 *   - the greedy 20-token continuation is identical (padding rows masked);
 *   - two sequences in one batch give each sequence's own logits;
 *   - a chat-style second turn that extends the cached prompt gives the same
 *     logits as a fresh run (KV prefix reuse);
 *   - a prompt longer than the context fails with a clear error.
 * The checks themselves are in tests/golden.h.
 */
#include "golden.h"

static const char *const fixtures[] = { "tied_gqa2_f32", "untied_gqa4_bf16_sharded", "mha_f32" };

int main(void)
{
    char plugin_dir[1024];
    const char *build = getenv("PIO_BUILD_DIR");
    size_t i;
    snprintf(plugin_dir, sizeof plugin_dir, "%s/plugins", build ? build : "build");
    for (i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++)
        golden_check_fixture("qwen3", fixtures[i], plugin_dir);
    pio_plugins_reset();
    return check_report("test_qwen3_golden");
}
