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
 * A bare TYPE applies to every 2-D tensor whose name ends in ".weight"
 * and to every 3-D stack of MoE expert matrices (a name with ".experts.",
 * e.g. transformers' fused "...mlp.experts.gate_up_proj", converted as one
 * matrix of n_expert·rows rows);
 * PATTERN=TYPE (fnmatch(3), '*' also matches '.') to every such tensor it
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
 * weights; Q4_K/Q6_K search scales and take ~5x longer than Q8_0/Q4_0
 * (~1 minute for 4B parameters on 2 cores).
 * `stats` may be NULL. Errors: ERR_INVALID_ARG for a bad spec (nothing is
 * converted), ERR_NOMEM.
 */
pio_status pio_weights_requantize(pio_weights *w, const char *spec, int n_threads,
                                  pio_requant_stats *stats);

/* Validate a spec without weights (for option parsing): same errors. */
pio_status pio_requant_spec_check(const char *spec);

/* ---- repack for the CPU kernels (src/formats/repack.c) -------------------- */

/*
 * Rearrange weight matrices in memory into the layout the active kernel
 * level runs fastest: today Q8_0, Q4_0, Q4_K and Q6_K matrices whose rows
 * are a multiple of 8 become the internal dtypes PIO_DTYPE_Q8_0_X8,
 * PIO_DTYPE_Q4_0_X8, PIO_DTYPE_Q4_K_X8 and PIO_DTYPE_Q6_K_X8 at AVX2 (8 rows
 * interleaved in the same bytes; src/kernels/quant.h). 2-D tensors are touched, but not
 * MoE experts (".experts.", "_exps") unless flags has PIO_REPACK_EXPERTS:
 * then expert tensors too, 2-D or 3-D (a 3-D one as a matrix of
 * experts·rows rows; rows % 16 == 0). A tensor w owns (quantized on load)
 * is repacked in place; one in the file's mapping is copied, and the file's
 * pages are dropped as the copy proceeds, so the resident set does not
 * grow. Repacked tensors are for pio_wmat use only (pio_matmul,
 * pio_wmat_row_f32): call this to run a model, never before writing a file.
 * Cost: one pass over the selected bytes on n_threads threads (<= 0: all
 * cores). *n_repacked (may be NULL) = tensors converted. Errors: ERR_NOMEM
 * (tensors done so far stay converted; each is complete).
 */
/* An expert matrix of a mixture-of-experts model (HF ".experts.", GGUF "_exps"). */
bool pio_tensor_is_expert(const pio_tensor *t);

#define PIO_REPACK_EXPERTS 1u
pio_status pio_weights_repack(pio_weights *w, int n_threads, unsigned flags, int *n_repacked);

/*
 * Ask the kernel to map the dense matrices that are still read straight from
 * the file (2-D, not MoE experts) with 2 MiB pages (madvise MADV_HUGEPAGE on
 * the whole 2 MiB pieces inside each). Pages the process faults in then come
 * from 2 MiB page-cache folios, mapped one TLB entry per 2 MiB, where the file
 * system and kernel support it (ext4/XFS on Linux 6.x); a file already cached
 * in small pages stays as it is. Nothing is read or copied. Decode streams
 * every matrix once per token, and with 4 KiB pages each 4 KiB is a TLB miss
 * (a two-level walk in a VM). Best effort: no error, and no effect where
 * transparent huge pages are off. Experts are left alone: they are paged in
 * lazily, and 2 MiB faults would read and keep unrouted experts' bytes.
 */
void pio_weights_advise_hugepages(const pio_weights *w);

/*
 * Where the bytes of tensor t of w (a pointer from pio_weights_get/find/at)
 * lie, for a change of layout made in place after load: MoE experts are
 * repacked the first time they are routed to (src/layers/moe.c).
 */
typedef enum pio_weights_mem {
    PIO_WEIGHTS_MEM_FOREIGN = 0,  /* the caller's memory (pio_gguf_from_memory), or not
                                     w's: never write */
    PIO_WEIGHTS_MEM_OWNED,        /* a buffer w owns (converted on load): writable */
    PIO_WEIGHTS_MEM_FILE_MAP,     /* the file's read-only MAP_PRIVATE mapping: writable
                                     once mprotect'ed; a page written becomes a private
                                     copy (anonymous) in place of the file's page */
} pio_weights_mem;

pio_weights_mem pio_weights_mem_of(const pio_weights *w, const pio_tensor *t);

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

/* ---- GGUF (src/formats/gguf*.c) ------------------------------------------
 *
 * llama.cpp's single-file format, versions 2 and 3, little-endian:
 *   "GGUF" | u32 version | u64 n_tensors | u64 n_kv | n_kv x (key, type, value)
 *   | n_tensors x (name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset)
 *   | padding to general.alignment (default 32) | tensor data
 * Tensor offsets are relative to the data section and aligned; ne[0] is the
 * innermost (fastest) dimension, so pio_tensor.shape is ne reversed
 * ([rows, cols] for a matrix). Tensor types handled: F32, F16, BF16, Q8_0,
 * Q4_0, Q4_K, Q6_K (GGML's blocks are ours bit for bit).
 */

typedef struct pio_gguf pio_gguf;

/* Metadata value types, numbered as in the file. */
typedef enum pio_gguf_type {
    PIO_GGUF_UINT8 = 0,
    PIO_GGUF_INT8 = 1,
    PIO_GGUF_UINT16 = 2,
    PIO_GGUF_INT16 = 3,
    PIO_GGUF_UINT32 = 4,
    PIO_GGUF_INT32 = 5,
    PIO_GGUF_FLOAT32 = 6,
    PIO_GGUF_BOOL = 7,
    PIO_GGUF_STRING = 8,
    PIO_GGUF_ARRAY = 9,
    PIO_GGUF_UINT64 = 10,
    PIO_GGUF_INT64 = 11,
    PIO_GGUF_FLOAT64 = 12,
    PIO_GGUF_TYPE_COUNT
} pio_gguf_type;

/* "uint32", "string", ... ("?" for an unknown value). */
const char *pio_gguf_type_name(pio_gguf_type t);

/*
 * Map `path` read-only and validate all of it: magic, version (2 or 3; v1
 * and big-endian files are ERR_UNSUPPORTED), counts against the file size,
 * every key, string and array length (overflow-checked; no nested arrays,
 * no duplicate keys), general.alignment (a power of two), and each tensor:
 * 1..4 dims, each > 0, a known GGML type whose block divides ne[0], offset
 * aligned, data inside the file and not overlapping another tensor, names
 * unique. ERR_FORMAT for a malformed file, ERR_UNSUPPORTED for a valid
 * tensor of a type pio does not handle (Q5_K, IQ*, ...), each naming the
 * file and the key or tensor at fault. No tensor data is copied.
 */
pio_status pio_gguf_open(const char *path, pio_gguf **out);

/* The same checks on a whole file image in memory (which must outlive the
 * handle); `name` is used in messages. For the fuzz target and tests. */
pio_status pio_gguf_from_memory(const void *buf, size_t len, const char *name, pio_gguf **out);

void pio_gguf_free(pio_gguf *g);

/* True when `path` is a regular file that starts with the magic "GGUF". */
bool pio_file_is_gguf(const char *path);

const char *pio_gguf_name(const pio_gguf *g);     /* path or name given */
uint32_t pio_gguf_version(const pio_gguf *g);
size_t pio_gguf_alignment(const pio_gguf *g);

/* -- metadata: by index (0..count-1, file order) or by key ----------------- */

int pio_gguf_kv_count(const pio_gguf *g);
const char *pio_gguf_kv_key(const pio_gguf *g, int i);
pio_gguf_type pio_gguf_kv_type(const pio_gguf *g, int i);
/* Arrays: element type and length; scalars: their own type and 1. */
pio_gguf_type pio_gguf_kv_elem_type(const pio_gguf *g, int i);
uint64_t pio_gguf_kv_len(const pio_gguf *g, int i);
/* Index of `key`, or -1 when absent. */
int pio_gguf_find_key(const pio_gguf *g, const char *key);

/*
 * Typed reads by key. A missing key is ERR_MISSING, a value of another type
 * ERR_FORMAT, both naming the file and the key. get_int takes any integer
 * type (a uint64 above INT64_MAX is an error); get_float any integer or
 * float type; get_str returns the bytes in place (not NUL-terminated).
 */
pio_status pio_gguf_get_int(const pio_gguf *g, const char *key, int64_t *out);
pio_status pio_gguf_get_float(const pio_gguf *g, const char *key, double *out);
pio_status pio_gguf_get_bool(const pio_gguf *g, const char *key, bool *out);
pio_status pio_gguf_get_str(const pio_gguf *g, const char *key, const char **s, size_t *len);

/* Element j of array kv i: false when i is not an array of that kind or j
 * is out of range. Integer arrays (any integer type, and bool) convert to
 * int64; float arrays to double; string elements come back in place. */
bool pio_gguf_arr_int(const pio_gguf *g, int i, uint64_t j, int64_t *out);
bool pio_gguf_arr_float(const pio_gguf *g, int i, uint64_t j, double *out);
bool pio_gguf_arr_str(const pio_gguf *g, int i, uint64_t j, const char **s, size_t *len);

/* -- tensors (GGUF names, e.g. "blk.0.attn_q.weight") ---------------------- */

int pio_gguf_tensor_count(const pio_gguf *g);
const pio_tensor *pio_gguf_tensor_at(const pio_gguf *g, int i);
const pio_tensor *pio_gguf_find_tensor(const pio_gguf *g, const char *name);

/* GGML type numbers (ggml.h) of our dtypes, and back; -1 when none. */
int pio_gguf_ggml_type(pio_dtype dt);
int pio_gguf_dtype_from_ggml(int ggml_type);
/* "Q5_K", "IQ4_XS", ... for any GGML type number; NULL when unknown. */
const char *pio_gguf_ggml_type_name(int ggml_type);

/* -- a GGUF model as Hugging Face objects (gguf_names.c) -------------------
 *
 * Architectures: general.architecture "qwen3" (Qwen3ForCausalLM) and
 * "qwen3moe" (Qwen3MoeForCausalLM). Tensor names (N = layer):
 *   token_embd.weight            model.embed_tokens.weight
 *   output_norm.weight           model.norm.weight
 *   output.weight                lm_head.weight (absent: tied embeddings)
 *   blk.N.attn_norm.weight       model.layers.N.input_layernorm.weight
 *   blk.N.attn_q/k/v.weight      model.layers.N.self_attn.q_proj/k_proj/v_proj.weight
 *   blk.N.attn_output.weight     model.layers.N.self_attn.o_proj.weight
 *   blk.N.attn_q_norm/k_norm.weight  model.layers.N.self_attn.q_norm/k_norm.weight
 *   blk.N.ffn_norm.weight        model.layers.N.post_attention_layernorm.weight
 *   blk.N.ffn_gate/up/down.weight    model.layers.N.mlp.gate_proj/up_proj/down_proj.weight
 *   blk.N.ffn_gate_inp.weight    model.layers.N.mlp.gate.weight (MoE router)
 *   blk.N.ffn_gate_exps.weight   model.layers.N.mlp.experts.gate_proj.weight [E, ff, hidden]
 *   blk.N.ffn_up_exps.weight     model.layers.N.mlp.experts.up_proj.weight   [E, ff, hidden]
 *   blk.N.ffn_down_exps.weight   model.layers.N.mlp.experts.down_proj.weight [E, hidden, ff]
 *   blk.N.ffn_gate_up_exps.weight model.layers.N.mlp.experts.gate_up_proj.weight [E, 2ff, hidden]
 * The fused expert tensors stay 3-D: row e of the outermost dimension is HF's
 * model.layers.N.mlp.experts.e.{gate,up,down}_proj.weight. Other names are
 * kept as in the file. q/k are not permuted: llama.cpp's converter writes
 * Qwen2/Qwen3 q_proj/k_proj unchanged (NeoX RoPE in both).
 */

/* HF name of GGUF tensor `name` into buf; false (buf untouched) when the
 * table has none. */
bool pio_gguf_name_to_hf(const char *name, char *buf, size_t cap);
/* GGUF name of HF tensor `name`; false when the table has none. */
bool pio_gguf_name_from_hf(const char *name, char *buf, size_t cap);

/* The HF architecture for general.architecture, or NULL when unsupported. */
const char *pio_gguf_arch_to_hf(const char *arch);

/*
 * The weights of `g` under their HF names, through the pio_weights API.
 * Takes ownership of g (freed with the weights, or here on failure).
 */
pio_status pio_weights_from_gguf(pio_gguf *g, pio_weights **out);
/* pio_gguf_open + pio_weights_from_gguf. */
pio_status pio_weights_open_gguf(const char *path, pio_weights **out);

/*
 * The hyperparameters of `g` as a config.json would give them: <arch>.* keys
 * (embedding_length, block_count, attention.head_count/_kv/key_length,
 * feed_forward_length, attention.layer_norm_rms_epsilon, rope.freq_base,
 * context_length, expert_count/expert_used_count/
 * expert_feed_forward_length), vocab_size = rows of token_embd.weight,
 * tie_word_embeddings = no output.weight, bos/eos from tokenizer.ggml.*.
 * cfg->json_root holds the equivalent config.json object (so plugins'
 * pio_hf_config_int works); cfg->path is the GGUF path. Errors name the
 * file and the GGUF key.
 */
pio_status pio_hf_config_from_gguf(const pio_gguf *g, pio_hf_config *cfg);

/*
 * Generation settings of `g`: defaults, bos/pad from tokenizer.ggml.*, and
 * the end-of-generation ids as llama.cpp collects them: eos_token_id,
 * eot_token_id, eom_token_id, then control tokens spelled "<|im_end|>" or
 * "<|endoftext|>" (Qwen's generation_config.json lists both).
 */
pio_status pio_generation_config_from_gguf(const pio_gguf *g, pio_generation_config *gc);

/*
 * The tokenizer of `g` (src/tokenizer/tok_gguf.c): tokenizer.ggml.model
 * "gpt2" with tokenizer.ggml.pre "qwen2" (Qwen's tokenizer.json: NFC,
 * Split on Qwen's regex + ByteLevel, ByteLevel decoder). tokens of type 1
 * (normal) form the BPE vocabulary with tokenizer.ggml.merges; type 3
 * (control) become special added tokens, type 4 (user-defined) non-special
 * added tokens; type 5 (unused) and "[PAD<id>]" fillers are left out.
 */
struct pio_tokenizer;
pio_status pio_tokenizer_from_gguf(const pio_gguf *g, struct pio_tokenizer **out);

/* ---- writing GGUF (gguf_write.c) ----------------------------------------- */

typedef struct pio_gguf_writer pio_gguf_writer;

/*
 * Write a GGUF v3 file in three steps: metadata and tensor descriptions
 * (any order), pio_gguf_writer_begin_data (writes the header), then each
 * tensor's bytes in the order the tensors were added, then
 * pio_gguf_writer_finish. Alignment 32. On any failure or a free without
 * finish, the partial file is removed.
 */
pio_status pio_gguf_writer_open(const char *path, pio_gguf_writer **out);
void pio_gguf_writer_free(pio_gguf_writer *w);

pio_status pio_gguf_writer_add_u32(pio_gguf_writer *w, const char *key, uint32_t v);
pio_status pio_gguf_writer_add_i32(pio_gguf_writer *w, const char *key, int32_t v);
pio_status pio_gguf_writer_add_f32(pio_gguf_writer *w, const char *key, float v);
pio_status pio_gguf_writer_add_bool(pio_gguf_writer *w, const char *key, bool v);
pio_status pio_gguf_writer_add_str(pio_gguf_writer *w, const char *key, const char *s);
/* Arrays: n strings (each NUL-terminated), or n int32 values. */
pio_status pio_gguf_writer_add_str_array(pio_gguf_writer *w, const char *key,
                                         const char *const *strs, uint64_t n);
pio_status pio_gguf_writer_add_i32_array(pio_gguf_writer *w, const char *key,
                                         const int32_t *v, uint64_t n);

/*
 * The tokenizer keys (tokenizer.ggml.*, chat template) from dir/tokenizer.json
 * and dir/tokenizer_config.json (optional), as llama.cpp's converter writes
 * them: ids 0..max(vocab_size, last id) with "[PAD<id>]" (unused) fillers,
 * vocabulary tokens normal, added tokens control (special, or spelled
 * "<|...|>") or user-defined, merges as "a b". bos/eos/pad/unk ids from
 * tokenizer_config.json's token strings, else from `cfg` (may be NULL).
 * Only Qwen2's pre-tokenizer ("qwen2") can be named; others: ERR_UNSUPPORTED.
 */
pio_status pio_gguf_writer_add_tokenizer(pio_gguf_writer *w, const char *dir, int64_t vocab_size,
                                         const pio_hf_config *cfg);

/* Describe a tensor: name (< 64 bytes), dtype (F32, F16, BF16, Q8_0, Q4_0,
 * Q4_K, Q6_K), shape outermost first; its size follows. */
pio_status pio_gguf_writer_add_tensor(pio_gguf_writer *w, const char *name, pio_dtype dtype,
                                      int n_dims, const int64_t *shape);
pio_status pio_gguf_writer_begin_data(pio_gguf_writer *w);
/* Append bytes of the current tensor (any number of calls; a tensor is done
 * when its size is reached, then padding is written). */
pio_status pio_gguf_writer_write(pio_gguf_writer *w, const void *data, size_t n);
pio_status pio_gguf_writer_finish(pio_gguf_writer *w);

/*
 * Convert a Hugging Face model directory (config.json, safetensors,
 * tokenizer.json, optional generation_config.json) to a GGUF file with
 * llama.cpp's names and metadata (pio quantize). `dtype` is the type of
 * the matrices (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K); `overrides` a
 * comma-separated list of PATTERN=TYPE (fnmatch on the HF or GGUF name,
 * last match wins) or NULL. 1-D tensors stay F32; a matrix whose rows are
 * not whole blocks falls back to Q8_0 (K-quants) or F16 (as llama.cpp
 * does). Per-expert MoE weights are stacked into 3-D tensors.
 * `n_threads` quantize rows in parallel (<= 0: all cores). `log` (may be
 * NULL) gets one line per tensor.
 */
typedef struct pio_gguf_convert_stats {
    int n_tensors;
    int n_fallback;          /* matrices stored in a fallback type */
    int64_t bytes_in, bytes_out;
} pio_gguf_convert_stats;

pio_status pio_gguf_convert_dir(const char *dir, const char *out_path, pio_dtype dtype,
                                const char *overrides, int n_threads, void (*log)(const char *line),
                                pio_gguf_convert_stats *stats);

#ifdef __cplusplus
}
#endif

#endif /* PIO_FORMATS_H */
