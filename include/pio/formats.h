/*
 * formats.h - model files: safetensors (single or sharded), config.json,
 * generation_config.json, parsed into neutral structs.
 *
 * Tensor data is used straight from the mmap: pio_tensor.data points into
 * the mapped file and stays valid until the owning pio_weights is freed.
 */
#ifndef PIO_FORMATS_H
#define PIO_FORMATS_H

#include "pio/pio.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PIO_MAX_DIMS 8

/* One tensor of a checkpoint. */
typedef struct pio_tensor {
    const char *name;             /* e.g. "model.layers.0.self_attn.q_proj.weight" */
    pio_dtype dtype;
    int n_dims;
    int64_t shape[PIO_MAX_DIMS];  /* row-major, outermost first ([out, in] for Linear) */
    int64_t n_elements;
    const void *data;             /* into the mmap; aligned to its element size */
    size_t nbytes;
    const char *file;             /* path of the file (shard) that holds it */
} pio_tensor;

/* ---- one safetensors file ------------------------------------------------ */

typedef struct pio_safetensors pio_safetensors;

/*
 * Map `path` read-only and validate its header: 8-byte little-endian header
 * length within the file, JSON object of {name: {dtype, shape, data_offsets}}
 * (plus optional "__metadata__"), known dtypes, offsets in range, sizes equal
 * to prod(shape)*sizeof(dtype), no overlapping tensors. Errors name the file
 * and the tensor or field at fault.
 */
pio_status pio_safetensors_open(const char *path, pio_safetensors **out);

/*
 * Validate a whole safetensors image held in memory (header + data); `name`
 * is used in messages. The buffer must outlive the handle. Used by the fuzz
 * target and tests; pio_safetensors_open uses it on the mapping.
 */
pio_status pio_safetensors_from_memory(const void *buf, size_t len, const char *name,
                                       pio_safetensors **out);

void pio_safetensors_free(pio_safetensors *st);

int pio_safetensors_count(const pio_safetensors *st);
const pio_tensor *pio_safetensors_at(const pio_safetensors *st, int i);
const pio_tensor *pio_safetensors_find(const pio_safetensors *st, const char *name);

/* ---- a model's weights: model.safetensors, or shards via the index ------- */

typedef struct pio_weights pio_weights;

/*
 * Open the weights of a Hugging Face model directory: `model.safetensors.index.json`
 * (weight_map: tensor -> shard file) if present, else `model.safetensors`,
 * else the only *.safetensors file. Every tensor named in the index must be in
 * its shard; duplicate names across files are an error.
 */
pio_status pio_weights_open_dir(const char *dir, pio_weights **out);

void pio_weights_free(pio_weights *w);

int pio_weights_count(const pio_weights *w);
const pio_tensor *pio_weights_at(const pio_weights *w, int i);

/* NULL when absent (no error set). */
const pio_tensor *pio_weights_find(const pio_weights *w, const char *name);

/*
 * Look up a required float tensor (F32, F16 or BF16) and check its shape.
 * `shape` has `n_dims` entries. On a missing tensor, wrong dtype or wrong
 * shape, fails with a message that names the tensor and file, and prints the
 * expected and actual shape.
 */
pio_status pio_weights_get(const pio_weights *w, const char *name, int n_dims,
                           const int64_t *shape, const pio_tensor **out);

/* ---- quantize on load (src/formats/requantize.c) ------------------------- */

/* What pio_weights_requantize did. */
typedef struct pio_requant_stats {
    int n_converted;          /* tensors converted to another dtype */
    int n_kept;               /* selected tensors left as stored: already that dtype, "keep",
                                 or rows that no block of the type fits */
    int n_fallback;           /* converted to Q4_0/Q8_0 because Q4_K/Q6_K blocks (256) do
                                 not divide the row length */
    int64_t bytes_before;     /* of the converted tensors, as stored */
    int64_t bytes_after;      /* of the converted tensors, converted */
} pio_requant_stats;

/*
 * Convert weight matrices of `w` in memory, as `spec` says:
 *
 *   spec  = item { "," item }
 *   item  = TYPE | PATTERN "=" TYPE
 *   TYPE  = f32 | f16 | bf16 | q8_0 | q4_0 | q4_k | q6_k | keep   (any case)
 *
 * A bare TYPE applies to every 2-D tensor whose name ends in ".weight";
 * PATTERN=TYPE (fnmatch(3), '*' also matches '.') to every 2-D tensor it
 * matches, the last matching item winning; "keep" leaves a tensor as
 * stored. 1-D tensors (norms, biases) are never converted. Example:
 * "q4_0,lm_head.weight=q8_0,*.embed_tokens.weight=q8_0".
 *
 * Rows must be whole blocks: where Q4_K/Q6_K (256) do not divide the row
 * length, Q4_0/Q8_0 (32) are used; where no block fits the tensor is kept.
 * f32 is rounded to f16/bf16 to nearest even; quantization is GGML's
 * reference (bit-identical blocks); quantized sources are dequantized first.
 *
 * Converted tensors live in buffers `w` owns (freed by pio_weights_free) and
 * replace the file's in pio_weights_find/get/at, with nbytes of the new
 * dtype; the file's pages of a converted tensor are released. Pointers to
 * tensors taken before the call may dangle. Rows are converted on
 * n_threads threads (<= 0: all cores). Cost: one pass over the selected
 * weights; Q4_K/Q6_K search scales and take ~50x longer than Q8_0/Q4_0.
 * `stats` may be NULL. Errors: ERR_INVALID_ARG for a bad spec (nothing is
 * converted), ERR_NOMEM.
 */
pio_status pio_weights_requantize(pio_weights *w, const char *spec, int n_threads,
                                  pio_requant_stats *stats);

/* Validate a spec without weights (for option parsing): same errors. */
pio_status pio_requant_spec_check(const char *spec);

/* ---- config.json --------------------------------------------------------- */

#define PIO_MAX_EOS 8

/*
 * The hyperparameters every decoder family shares, read from config.json.
 * For multimodal configs the language-model fields come from `text_config`.
 * RoPE is read from `rope_parameters` (transformers >= 5) or from top-level
 * `rope_theta` + `rope_scaling` (older files).
 */
typedef struct pio_hf_config {
    char path[1024];                 /* the config.json read */
    char architecture[128];          /* architectures[0], "" if absent */
    char model_type[64];
    int64_t vocab_size;
    int64_t hidden_size;
    int64_t intermediate_size;
    int64_t num_hidden_layers;
    int64_t num_attention_heads;
    int64_t num_key_value_heads;     /* defaults to num_attention_heads */
    int64_t head_dim;                /* defaults to hidden/heads */
    int64_t max_position_embeddings;
    double rms_norm_eps;
    double rope_theta;
    char rope_type[32];              /* "default" when absent */
    double rope_factor;              /* rope scaling factor, 1.0 when absent */
    int mrope_section[3];            /* Qwen-VL M-RoPE sections, zeros if absent */
    bool mrope_interleaved;
    bool tie_word_embeddings;
    bool attention_bias;
    char hidden_act[32];
    char torch_dtype[16];
    int64_t bos_token_id;            /* -1 if absent */
    int n_eos;
    int64_t eos_token_ids[PIO_MAX_EOS];
    /* MoE (0 when absent) */
    int64_t num_experts;
    int64_t num_experts_per_tok;
    int64_t moe_intermediate_size;
    int64_t decoder_sparse_step;
    bool norm_topk_prob;
    /* The parsed JSON (cJSON *) of the whole file and of the text part
     * (text_config or the root), for plugin-specific keys. Owned. */
    void *json_root;
    const void *json_text;
} pio_hf_config;

/* Parse `path` (a config.json). Errors name the file and the field. */
pio_status pio_hf_config_load(const char *path, pio_hf_config *cfg);
/* Same, from a JSON string; `name` is used in messages. */
pio_status pio_hf_config_parse(const char *json, size_t len, const char *name, pio_hf_config *cfg);
void pio_hf_config_free(pio_hf_config *cfg);

/* Plugin-specific numeric keys from the text part; `def` when absent. */
int64_t pio_hf_config_int(const pio_hf_config *cfg, const char *key, int64_t def);
double pio_hf_config_double(const pio_hf_config *cfg, const char *key, double def);

/* ---- generation_config.json ---------------------------------------------- */

typedef struct pio_generation_config {
    int n_eos;
    int64_t eos_token_ids[PIO_MAX_EOS];
    int64_t bos_token_id;            /* -1 if absent */
    int64_t pad_token_id;            /* -1 if absent */
    bool do_sample;                  /* false when absent */
    double temperature;              /* 1.0 when absent */
    int64_t top_k;                   /* 50 when absent (transformers' default) */
    double top_p;                    /* 1.0 when absent */
    double min_p;                    /* 0.0 when absent */
    double repetition_penalty;       /* 1.0 when absent */
    int64_t max_new_tokens;          /* -1 when absent */
} pio_generation_config;

/* Defaults as transformers' GenerationConfig. */
void pio_generation_config_defaults(pio_generation_config *gc);
/* Parse `path`; a missing file is not an error here (caller checks existence). */
pio_status pio_generation_config_load(const char *path, pio_generation_config *gc);
pio_status pio_generation_config_parse(const char *json, size_t len, const char *name,
                                       pio_generation_config *gc);

#ifdef __cplusplus
}
#endif

#endif /* PIO_FORMATS_H */
