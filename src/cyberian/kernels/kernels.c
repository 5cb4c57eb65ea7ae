/* Fused kernels of the int8 graph's twin (domain "ai.cyberian.int8", version 1).
 *
 * Each kernel computes, element by element and in the same order, exactly the
 * chain of standard ONNX operations it replaces in the pinned int8 graph
 * (src/cyberian/models/bert_int8.py): the same correctly rounded IEEE-754
 * float32 additions, multiplications, divisions and square roots, the same
 * maxima, the same round-half-to-even, the same exact integer row sums. It
 * reads each row once instead of once per operation, which is the whole
 * speed-up; the bits are those of the standard graph, on every CPU, and the
 * test suite checks them against it.
 *
 * Rules that keep it so: compiled with -ffp-contract=off and never with
 * -ffast-math (no fused multiply-add, no reassociation, no reciprocal for a
 * division); float sums only of whole numbers below 2^24 (exact in any
 * order); rounding by the 1.5 * 2^23 trick, exact for |v| <= 2^22, which
 * every rounded value here is. On x86-64 GCC also builds AVX2 and AVX-512
 * clones of the row loops and picks one at load time: the same operations,
 * more lanes.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ort_abi.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define ROW_LOOP __attribute__((target_clones("default", "avx2", "avx512f")))
#else
#define ROW_LOOP
#endif

#define EXPORT __attribute__((visibility("default")))

enum { MAX_INPUTS = 12, MAX_OUTPUTS = 3, MAX_RANK = 8, MAX_FLOATS = 6, MAX_INTS = 2 };
static const float ACTIVATION_LEVELS = 127.0f; /* unsigned values 128 + round(x / s), 1..255 */
static const float SIGNED_LEVELS = 63.0f;      /* signed values round(x / s), -63..63 */
static const float GRID = 16777216.0f;         /* 2^24: a row sum's whole-number budget */

/* round half to even, for |v| <= 2^22 */
static inline float round_even(float v) {
    const float magic = 12582912.0f; /* 1.5 * 2^23 */
    return (v + magic) - magic;
}

static inline float clamp(float v, float low, float high) {
    v = v > low ? v : low;
    return v < high ? v : high;
}

/* QuantizeLinear: round(clamp(x / s)) + zero, as MLAS computes it */
static inline uint8_t quantize_unsigned(float x, float scale) {
    return (uint8_t)(int32_t)(round_even(clamp(x / scale, -128.0f, 127.0f)) + 128.0f);
}

static inline int8_t quantize_signed(float x, float scale) {
    return (int8_t)(int32_t)round_even(clamp(x / scale, -128.0f, 127.0f));
}

/* A float's bits as an integer that orders like the float (-0 just below +0), and back:
 * integer maxima vectorise on every CPU, float ones only under -ffast-math. */
static inline int32_t ordered_bits(float v) {
    int32_t bits;
    memcpy(&bits, &v, sizeof bits);
    return bits ^ ((bits >> 31) & 0x7fffffff);
}

static inline float from_ordered_bits(int32_t key) {
    int32_t bits = key ^ ((key >> 31) & 0x7fffffff);
    float v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

/* The largest and smallest value of a row (exact in any order). */
static inline void row_extremes(const float* x, size_t n, float* high, float* low) {
    int32_t hi = INT32_MIN, lo = INT32_MAX;
    for (size_t i = 0; i < n; i++) {
        int32_t key = ordered_bits(x[i]);
        hi = key > hi ? key : hi;
        lo = key < lo ? key : lo;
    }
    *high = from_ordered_bits(hi);
    *low = from_ordered_bits(lo);
}

/* max |x| as the graph forms it from a row's extremes: max(max x, -min x), floored */
static inline float peak_of(float high, float low, float floor) {
    float peak = high > -low ? high : -low;
    return peak > floor ? peak : floor;
}

static inline float row_peak(const float* x, size_t n, float floor) {
    float hi, lo;
    row_extremes(x, n, &hi, &lo);
    return peak_of(hi, lo, floor);
}

/* max x of a row whose values are known to be >= -floor, floored */
static inline float row_peak_bounded_below(const float* x, size_t n, float floor) {
    float hi, lo;
    row_extremes(x, n, &hi, &lo);
    return hi > floor ? hi : floor;
}

/* The graph's exact row sum: each value rounded onto the grid 2^24 / n / peak, summed as
 * integers, divided back. */
static inline float exact_row_sum(const float* x, size_t n, float peak) {
    float grid = (float)((int64_t)GRID / (int64_t)n) / peak;
    int32_t total = 0;
    for (size_t i = 0; i < n; i++) total += (int32_t)round_even(x[i] * grid);
    return (float)total / grid;
}

/* ------------------------------------------------------------------------------------------ */
/* Tensors and jobs                                                                            */

typedef struct Tensor {
    void* data;
    int64_t dims[MAX_RANK];
    size_t rank;
    int64_t count;
    int type;
} Tensor;

typedef struct Kernel {
    const OrtApi* api;
    const struct OpDef* def;
    float f[MAX_FLOATS];   /* the op's float attributes, in OpDef.floats order */
    int64_t n[MAX_INTS];   /* its integer attributes, in OpDef.ints order */
} Kernel;

/* One op's work, cut into row ranges run in parallel on ONNX Runtime's threads. */
typedef struct Job {
    const Kernel* kernel;
    Tensor in[MAX_INPUTS];
    size_t inputs;
    void* out[MAX_OUTPUTS];
    size_t rows, width, rows_per_task;
    void (*rows_fn)(const struct Job* job, size_t first, size_t end);
    int failed; /* set by a task that could not allocate its scratch row */
} Job;

/* A task's scratch space of `bytes`; NULL (and the op then fails with a status, never a crash)
 * when it cannot be allocated. */
static void* scratch(const Job* job, size_t bytes) {
    void* space = malloc(bytes);
    if (!space) __atomic_store_n(&((Job*)job)->failed, 1, __ATOMIC_RELAXED);
    return space;
}

static void run_task(void* user, size_t task) {
    Job* job = (Job*)user;
    size_t first = task * job->rows_per_task;
    size_t end = first + job->rows_per_task;
    if (end > job->rows) end = job->rows;
    job->rows_fn(job, first, end);
}

static OrtStatus* error(const OrtApi* api, const char* op, const char* what) {
    char message[256];
    snprintf(message, sizeof message, "cyberian kernel %s: %s", op, what);
    return ORT_FN(api, CreateStatus)(ORT_RUNTIME_EXCEPTION, message);
}

/* ------------------------------------------------------------------------------------------ */
/* Row loops                                                                                   */

/* QuantizeRowsSigned: each row on its own symmetric scale. f: floor; n: has_min */
ROW_LOOP static void quantize_rows_signed(const Job* job, size_t first, size_t end) {
    const float* x = (const float*)job->in[0].data;
    float* scales = (float*)job->out[1];
    size_t w = job->width;
    float floor = job->kernel->f[0];
    int has_min = (int)job->kernel->n[0];
    for (size_t r = first; r < end; r++) {
        const float* row = x + r * w;
        float peak = has_min ? row_peak(row, w, floor) : row_peak_bounded_below(row, w, floor);
        float scale = peak / SIGNED_LEVELS;
        int8_t* q = (int8_t*)job->out[0] + r * w;
        for (size_t c = 0; c < w; c++) q[c] = quantize_signed(row[c], scale);
        scales[r] = scale;
    }
}

/* LayerNormQuantize / ResidualNorm1 / ResidualNorm4: inputs x, gamma, beta[, bias, (mm, s)...].
 * f: epsilon, inverse_width, tiny; n: quantize */
ROW_LOOP static void residual_norm(const Job* job, size_t first, size_t end) {
    size_t w = job->width, parts = job->inputs > 3 ? (job->inputs - 4) / 2 : 0;
    const float* x = (const float*)job->in[0].data;
    const float* gamma = (const float*)job->in[1].data;
    const float* beta = (const float*)job->in[2].data;
    const float* bias = parts ? (const float*)job->in[3].data : NULL;
    float epsilon = job->kernel->f[0], inverse_width = job->kernel->f[1], tiny = job->kernel->f[2];
    int quantize = (int)job->kernel->n[0];
    float* residual = (float*)scratch(job, 2 * w * sizeof(float));
    if (!residual) return;
    float* centred = residual + w;
    for (size_t r = first; r < end; r++) {
        const float* row = x + r * w;
        if (parts) {
            const float* mm = (const float*)job->in[4].data + r * w;
            float s = ((const float*)job->in[5].data)[r];
            for (size_t c = 0; c < w; c++) residual[c] = mm[c] * s;
            for (size_t k = 1; k < parts; k++) {
                mm = (const float*)job->in[4 + 2 * k].data + r * w;
                s = ((const float*)job->in[5 + 2 * k].data)[r];
                for (size_t c = 0; c < w; c++) residual[c] = residual[c] + mm[c] * s;
            }
            for (size_t c = 0; c < w; c++) residual[c] = (residual[c] + bias[c]) + row[c];
            row = residual;
        }
        float mean = exact_row_sum(row, w, row_peak(row, w, tiny)) * inverse_width;
        for (size_t c = 0; c < w; c++) centred[c] = row[c] - mean;
        float* square = residual; /* the residual row is no longer needed */
        for (size_t c = 0; c < w; c++) square[c] = centred[c] * centred[c];
        float variance =
            exact_row_sum(square, w, row_peak_bounded_below(square, w, tiny)) * inverse_width;
        float std = sqrtf(variance + epsilon);
        float* y = (float*)job->out[0] + r * w;
        for (size_t c = 0; c < w; c++) y[c] = (centred[c] / std) * gamma[c] + beta[c];
        if (quantize) {
            float scale = row_peak(y, w, tiny) / ACTIVATION_LEVELS;
            uint8_t* q = (uint8_t*)job->out[1] + r * w;
            for (size_t c = 0; c < w; c++) q[c] = quantize_unsigned(y[c], scale);
            ((float*)job->out[2])[r] = scale;
        }
    }
    free(residual);
}

/* GeluQuantize: inputs mm, row scale, bias. f: floor, clamp, c1, c2, c3, c4 */
ROW_LOOP static void gelu_quantize(const Job* job, size_t first, size_t end) {
    size_t w = job->width;
    const float* bias = (const float*)job->in[2].data;
    const float* f = job->kernel->f;
    float floor = f[0], limit = f[1], c1 = f[2], c2 = f[3], c3 = f[4], c4 = f[5];
    float* activated = (float*)scratch(job, w * sizeof(float));
    if (!activated) return;
    for (size_t r = first; r < end; r++) {
        const float* mm = (const float*)job->in[0].data + r * w;
        float s = ((const float*)job->in[1].data)[r];
        for (size_t c = 0; c < w; c++) {
            float up = mm[c] * s + bias[c];
            float m = fabsf(up);
            m = m < limit ? m : limit;
            float tail = ((((c4 * m) + c3) * m + c2) * m + c1) * m;
            activated[c] = (up > 0.0f ? up : 0.0f) - tail;
        }
        float scale = row_peak_bounded_below(activated, w, floor) / ACTIVATION_LEVELS;
        uint8_t* q = (uint8_t*)job->out[0] + r * w;
        for (size_t c = 0; c < w; c++) q[c] = quantize_unsigned(activated[c], scale);
        ((float*)job->out[1])[r] = scale;
    }
    free(activated);
}

/* AttentionWeights: inputs scores (B,h,L,L), q scales (B,h,L,1), k scales (B,h,1,L), additive
 * mask (B,1,1,L). f: exp_floor, c3, probability_scale */
ROW_LOOP static void attention_weights(const Job* job, size_t first, size_t end) {
    size_t length = job->width, heads = (size_t)job->in[0].dims[1];
    const float* f = job->kernel->f;
    float exp_floor = f[0], c3 = f[1], probability_scale = f[2];
    float* logits = (float*)scratch(job, length * sizeof(float));
    if (!logits) return;
    for (size_t r = first; r < end; r++) {
        size_t text = r / (heads * length), head_row = r / length;
        const float* scores = (const float*)job->in[0].data + r * length;
        float q_scale = ((const float*)job->in[1].data)[r];
        const float* k_scale = (const float*)job->in[2].data + head_row * length;
        const float* additive = (const float*)job->in[3].data + text * length;
        for (size_t j = 0; j < length; j++)
            logits[j] = (scores[j] * q_scale) * k_scale[j] + additive[j];
        float peak, low;
        row_extremes(logits, length, &peak, &low);
        uint8_t* q = (uint8_t*)job->out[0] + r * length;
        for (size_t j = 0; j < length; j++) {
            float y = logits[j] - peak;
            y = y > exp_floor ? y : exp_floor;
            float p = ((c3 * y + 0.5f) * y + 1.0f) * y + 1.0f;
            p = p * p;
            p = p * p;
            p = p * p;
            p = p * p;
            q[j] = (uint8_t)(int32_t)round_even(clamp(p / probability_scale, 0.0f, 255.0f));
        }
    }
    free(logits);
}

/* QueryQuantize: inputs mm (R, H), row scale (R), bias (H); each row's groups of `group`
 * columns quantised on their own scales. f: floor; n: group */
ROW_LOOP static void query_quantize(const Job* job, size_t first, size_t end) {
    size_t w = job->width, group = (size_t)job->kernel->n[0];
    const float* bias = (const float*)job->in[2].data;
    float floor = job->kernel->f[0];
    float* query = (float*)scratch(job, w * sizeof(float));
    if (!query) return;
    for (size_t r = first; r < end; r++) {
        const float* mm = (const float*)job->in[0].data + r * w;
        float s = ((const float*)job->in[1].data)[r];
        for (size_t c = 0; c < w; c++) query[c] = mm[c] * s + bias[c];
        for (size_t g = 0; g < w / group; g++) {
            const float* part = query + g * group;
            float scale = row_peak(part, group, floor) / ACTIVATION_LEVELS;
            uint8_t* q = (uint8_t*)job->out[0] + r * w + g * group;
            for (size_t c = 0; c < group; c++) q[c] = quantize_unsigned(part[c], scale);
            ((float*)job->out[1])[r * (w / group) + g] = scale;
        }
    }
    free(query);
}

/* ValueQuantize: inputs mm (B*L, H), row scale (B*L), 0/1 key mask (B,1,1,L). Per text, head
 * and column, the real tokens' values quantised on one scale; out (B,h,L,d+1) values with a
 * column of ones, and the scales (B,h,d). A job row is one (text, head). f: floor; n: heads */
ROW_LOOP static void value_quantize(const Job* job, size_t first, size_t end) {
    size_t heads = (size_t)job->kernel->n[0], length = (size_t)job->in[2].dims[3];
    size_t hidden = (size_t)job->in[0].dims[1], d = hidden / heads;
    const float* mm = (const float*)job->in[0].data;
    const float* row_scale = (const float*)job->in[1].data;
    const float* keep = (const float*)job->in[2].data;
    float floor = job->kernel->f[0];
    /* (L, d): the head's values token by token, then per column its extremes (ordered bits) */
    float* block = (float*)scratch(job, length * d * sizeof(float) + 2 * d * sizeof(int32_t));
    if (!block) return;
    int32_t* hi = (int32_t*)(block + length * d);
    int32_t* lo = hi + d;
    for (size_t r = first; r < end; r++) {
        size_t text = r / heads, head = r % heads;
        for (size_t c = 0; c < d; c++) {
            hi[c] = INT32_MIN;
            lo[c] = INT32_MAX;
        }
        for (size_t l = 0; l < length; l++) {
            size_t token = text * length + l;
            const float* row = mm + token * hidden + head * d;
            float s = row_scale[token], k = keep[token];
            float* values = block + l * d;
            for (size_t c = 0; c < d; c++) {
                values[c] = (row[c] * s) * k;
                int32_t key = ordered_bits(values[c]);
                hi[c] = key > hi[c] ? key : hi[c];
                lo[c] = key < lo[c] ? key : lo[c];
            }
        }
        float* scales = (float*)job->out[1] + r * d;
        for (size_t c = 0; c < d; c++) {
            float peak = peak_of(from_ordered_bits(hi[c]), from_ordered_bits(lo[c]), floor);
            scales[c] = peak / SIGNED_LEVELS;
        }
        int8_t* out = (int8_t*)job->out[0] + r * length * (d + 1);
        for (size_t l = 0; l < length; l++) {
            const float* values = block + l * d;
            int8_t* q = out + l * (d + 1);
            for (size_t c = 0; c < d; c++) q[c] = quantize_signed(values[c], scales[c]);
            q[d] = 1;
        }
    }
    free(block);
}

/* ContextQuantize: inputs the (B,h,L,d+1) products of the weights with [v | 1] and the v
 * scales (B,h,d); each token's context row (numerator * v scale / denominator, heads side by
 * side) quantised on its own scale. A job row is one token. f: floor */
ROW_LOOP static void context_quantize(const Job* job, size_t first, size_t end) {
    size_t heads = (size_t)job->in[0].dims[1], length = (size_t)job->in[0].dims[2];
    size_t d = (size_t)job->in[0].dims[3] - 1, w = job->width;
    const float* weighted = (const float*)job->in[0].data;
    const float* v_scale = (const float*)job->in[1].data;
    float floor = job->kernel->f[0];
    float* context = (float*)scratch(job, w * sizeof(float));
    if (!context) return;
    for (size_t r = first; r < end; r++) {
        size_t text = r / length, l = r % length;
        for (size_t head = 0; head < heads; head++) {
            const float* products = weighted + (((text * heads + head) * length) + l) * (d + 1);
            const float* scale = v_scale + (text * heads + head) * d;
            float denominator = products[d];
            for (size_t c = 0; c < d; c++)
                context[head * d + c] = (products[c] * scale[c]) / denominator;
        }
        float row_scale = row_peak(context, w, floor) / ACTIVATION_LEVELS;
        uint8_t* q = (uint8_t*)job->out[0] + r * w;
        for (size_t c = 0; c < w; c++) q[c] = quantize_unsigned(context[c], row_scale);
        ((float*)job->out[1])[r] = row_scale;
    }
    free(context);
}

/* ------------------------------------------------------------------------------------------ */
/* Ops                                                                                         */

typedef OrtStatus* (*Prepare)(const Kernel* kernel, OrtKernelContext* context, Job* job);

typedef struct OpDef {
    OrtCustomOp base; /* first, so ORT's pointer to it is a pointer to the OpDef */
    const char* name;
    int input_types[MAX_INPUTS];
    size_t inputs;
    int output_types[MAX_OUTPUTS];
    size_t outputs;
    const char* floats[MAX_FLOATS];
    const char* ints[MAX_INTS];
    Prepare prepare;
} OpDef;

static OrtStatus* read_tensor(const OrtApi* api, const OrtValue* value, Tensor* t) {
    OrtTensorTypeAndShapeInfo* info = NULL;
    OrtStatus* status = ORT_FN(api, GetTensorTypeAndShape)(value, &info);
    if (!status) status = ORT_FN(api, GetDimensionsCount)(info, &t->rank);
    if (!status && t->rank > MAX_RANK) status = ORT_FN(api, CreateStatus)(ORT_RUNTIME_EXCEPTION,
                                                                       "cyberian kernel: rank > 8");
    if (!status) status = ORT_FN(api, GetDimensions)(info, t->dims, t->rank);
    if (!status) status = ORT_FN(api, GetTensorElementType)(info, &t->type);
    if (info) ORT_FN(api, ReleaseTensorTypeAndShapeInfo)(info);
    if (!status) status = ORT_FN(api, GetTensorMutableData)((OrtValue*)value, &t->data);
    t->count = 1;
    for (size_t i = 0; !status && i < t->rank; i++) t->count *= t->dims[i];
    return status;
}

static OrtStatus* read_inputs(const Kernel* kernel, OrtKernelContext* context, Job* job) {
    const OrtApi* api = kernel->api;
    const OpDef* def = kernel->def;
    job->inputs = def->inputs;
    for (size_t i = 0; i < def->inputs; i++) {
        const OrtValue* value = NULL;
        OrtStatus* status = ORT_FN(api, KernelContext_GetInput)(context, i, &value);
        if (!status && !value) return error(api, def->name, "an input is missing");
        if (!status) status = read_tensor(api, value, &job->in[i]);
        if (status) return status;
        if (job->in[i].type != def->input_types[i])
            return error(api, def->name, "an input has the wrong element type");
    }
    return NULL;
}

static OrtStatus* make_output(const Kernel* kernel, OrtKernelContext* context, size_t index,
                              const int64_t* dims, size_t rank, void** data) {
    OrtValue* value = NULL;
    OrtStatus* status = ORT_FN(kernel->api, KernelContext_GetOutput)(context, index, dims, rank,
                                                                     &value);
    if (!status) status = ORT_FN(kernel->api, GetTensorMutableData)(value, data);
    return status;
}

/* rows of the last axis: (rows, width) from a tensor of rank >= 1 */
static int as_rows(const Tensor* t, size_t* rows, size_t* width) {
    if (t->rank < 1 || t->dims[t->rank - 1] <= 0) return 0;
    *width = (size_t)t->dims[t->rank - 1];
    *rows = (size_t)(t->count / t->dims[t->rank - 1]);
    return 1;
}

static OrtStatus* prepare_quantize_rows(const Kernel* kernel, OrtKernelContext* context, Job* job) {
    const Tensor* x = &job->in[0];
    if (!as_rows(x, &job->rows, &job->width))
        return error(kernel->api, kernel->def->name, "x must have a non-empty last axis");
    OrtStatus* status = make_output(kernel, context, 0, x->dims, x->rank, &job->out[0]);
    if (!status) status = make_output(kernel, context, 1, x->dims, x->rank - 1, &job->out[1]);
    job->rows_fn = quantize_rows_signed;
    return status;
}

static OrtStatus* prepare_residual_norm(const Kernel* kernel, OrtKernelContext* context, Job* job) {
    const Tensor* x = &job->in[0];
    const char* name = kernel->def->name;
    if (x->rank != 2 || !as_rows(x, &job->rows, &job->width))
        return error(kernel->api, name, "x must be (rows, width)");
    size_t w = job->width, rows = job->rows;
    if ((size_t)job->in[1].count != w || (size_t)job->in[2].count != w)
        return error(kernel->api, name, "gamma and beta must have the rows' width");
    if (job->inputs > 3 && (size_t)job->in[3].count != w)
        return error(kernel->api, name, "the bias must have the rows' width");
    for (size_t i = 4; i + 1 < job->inputs; i += 2)
        if ((size_t)job->in[i].count != rows * w || (size_t)job->in[i + 1].count != rows)
            return error(kernel->api, name, "a product must be (rows, width), its scale (rows)");
    int64_t quantized_rows[2] = {x->dims[0], x->dims[1]}, scale_rows[1] = {x->dims[0]};
    if (!kernel->n[0]) quantized_rows[0] = quantized_rows[1] = scale_rows[0] = 0;
    OrtStatus* status = make_output(kernel, context, 0, x->dims, 2, &job->out[0]);
    if (!status) status = make_output(kernel, context, 1, quantized_rows, 2, &job->out[1]);
    if (!status) status = make_output(kernel, context, 2, scale_rows, 1, &job->out[2]);
    job->rows_fn = residual_norm;
    return status;
}

static OrtStatus* prepare_gelu_quantize(const Kernel* kernel, OrtKernelContext* context, Job* job) {
    const Tensor* mm = &job->in[0];
    if (mm->rank != 2 || !as_rows(mm, &job->rows, &job->width) ||
        (size_t)job->in[1].count != job->rows || (size_t)job->in[2].count != job->width)
        return error(kernel->api, kernel->def->name,
                     "expects a (rows, width) product, (rows) scales and a (width) bias");
    OrtStatus* status = make_output(kernel, context, 0, mm->dims, 2, &job->out[0]);
    if (!status) status = make_output(kernel, context, 1, mm->dims, 1, &job->out[1]);
    job->rows_fn = gelu_quantize;
    return status;
}

static OrtStatus* prepare_attention_weights(const Kernel* kernel, OrtKernelContext* context,
                                            Job* job) {
    const Tensor* scores = &job->in[0];
    if (scores->rank != 4 || scores->dims[2] != scores->dims[3] ||
        !as_rows(scores, &job->rows, &job->width) ||
        (size_t)job->in[1].count != job->rows ||
        (size_t)job->in[2].count != job->rows ||
        (size_t)job->in[3].count != (size_t)(scores->dims[0] * scores->dims[3]))
        return error(kernel->api, kernel->def->name,
                     "expects (B,h,L,L) scores, (B,h,L,1) and (B,h,1,L) scales, a (B,1,1,L) mask");
    job->rows_fn = attention_weights;
    return make_output(kernel, context, 0, scores->dims, 4, &job->out[0]);
}

static OrtStatus* prepare_query_quantize(const Kernel* kernel, OrtKernelContext* context,
                                         Job* job) {
    const Tensor* mm = &job->in[0];
    int64_t group = kernel->n[0];
    if (mm->rank != 2 || !as_rows(mm, &job->rows, &job->width) || group <= 0 ||
        job->width % (size_t)group != 0 || (size_t)job->in[1].count != job->rows ||
        (size_t)job->in[2].count != job->width)
        return error(kernel->api, kernel->def->name,
                     "expects a (rows, width) product, (rows) scales, a (width) bias and a "
                     "group that divides the width");
    int64_t groups = (int64_t)(job->rows * (job->width / (size_t)group));
    int64_t value_dims[2] = {groups, group}, scale_dims[1] = {groups};
    OrtStatus* status = make_output(kernel, context, 0, value_dims, 2, &job->out[0]);
    if (!status) status = make_output(kernel, context, 1, scale_dims, 1, &job->out[1]);
    job->rows_fn = query_quantize;
    return status;
}

static OrtStatus* prepare_value_quantize(const Kernel* kernel, OrtKernelContext* context,
                                         Job* job) {
    const Tensor *mm = &job->in[0], *keep = &job->in[2];
    int64_t heads = kernel->n[0];
    if (mm->rank != 2 || keep->rank != 4 || heads <= 0 || mm->dims[1] % heads != 0 ||
        keep->dims[1] != 1 || keep->dims[2] != 1 ||
        mm->dims[0] != keep->dims[0] * keep->dims[3] || job->in[1].count != mm->dims[0])
        return error(kernel->api, kernel->def->name,
                     "expects a (B*L, H) product, (B*L) scales and a (B,1,1,L) mask");
    int64_t texts = keep->dims[0], length = keep->dims[3], d = mm->dims[1] / heads;
    job->rows = (size_t)(texts * heads);
    job->width = (size_t)(length * d);
    int64_t value_dims[4] = {texts, heads, length, d + 1}, scale_dims[3] = {texts, heads, d};
    OrtStatus* status = make_output(kernel, context, 0, value_dims, 4, &job->out[0]);
    if (!status) status = make_output(kernel, context, 1, scale_dims, 3, &job->out[1]);
    job->rows_fn = value_quantize;
    return status;
}

static OrtStatus* prepare_context_quantize(const Kernel* kernel, OrtKernelContext* context,
                                           Job* job) {
    const Tensor *products = &job->in[0], *v_scale = &job->in[1];
    if (products->rank != 4 || products->dims[3] < 2 || v_scale->rank != 3 ||
        v_scale->dims[0] != products->dims[0] || v_scale->dims[1] != products->dims[1] ||
        v_scale->dims[2] != products->dims[3] - 1)
        return error(kernel->api, kernel->def->name,
                     "expects (B,h,L,d+1) products and (B,h,d) scales");
    int64_t texts = products->dims[0], heads = products->dims[1], length = products->dims[2];
    int64_t hidden = heads * (products->dims[3] - 1);
    job->rows = (size_t)(texts * length);
    job->width = (size_t)hidden;
    int64_t value_dims[2] = {texts * length, hidden}, scale_dims[1] = {texts * length};
    OrtStatus* status = make_output(kernel, context, 0, value_dims, 2, &job->out[0]);
    if (!status) status = make_output(kernel, context, 1, scale_dims, 1, &job->out[1]);
    job->rows_fn = context_quantize;
    return status;
}

/* ------------------------------------------------------------------------------------------ */
/* The OrtCustomOp callbacks                                                                   */

static const OpDef* op_def(const OrtCustomOp* op) { return (const OpDef*)op; }
static const char* op_name(const OrtCustomOp* op) { return op_def(op)->name; }
static const char* op_provider(const OrtCustomOp* op) { (void)op; return NULL; } /* CPU */
static int op_input_type(const OrtCustomOp* op, size_t i) { return op_def(op)->input_types[i]; }
static size_t op_input_count(const OrtCustomOp* op) { return op_def(op)->inputs; }
static int op_output_type(const OrtCustomOp* op, size_t i) { return op_def(op)->output_types[i]; }
static size_t op_output_count(const OrtCustomOp* op) { return op_def(op)->outputs; }
static int op_required(const OrtCustomOp* op, size_t i) {
    (void)op; (void)i;
    return INPUT_OUTPUT_REQUIRED;
}
static int op_memory_type(const OrtCustomOp* op, size_t i) { (void)op; (void)i; return 0; }
static int op_arity(const OrtCustomOp* op) { (void)op; return 1; }

static OrtStatus* op_create(const OrtCustomOp* op, const OrtApi* api, const OrtKernelInfo* info,
                            void** out) {
    const OpDef* def = op_def(op);
    Kernel* kernel = (Kernel*)calloc(1, sizeof(Kernel));
    if (!kernel) return ORT_FN(api, CreateStatus)(ORT_RUNTIME_EXCEPTION, "out of memory");
    kernel->api = api;
    kernel->def = def;
    OrtStatus* status = NULL;
    for (size_t i = 0; !status && i < MAX_FLOATS && def->floats[i]; i++)
        status = ORT_FN(api, KernelInfoGetAttribute_float)(info, def->floats[i], &kernel->f[i]);
    for (size_t i = 0; !status && i < MAX_INTS && def->ints[i]; i++)
        status = ORT_FN(api, KernelInfoGetAttribute_int64)(info, def->ints[i], &kernel->n[i]);
    if (status) {
        free(kernel);
        return status;
    }
    *out = kernel;
    return NULL;
}

static OrtStatus* op_compute(void* opaque, OrtKernelContext* context) {
    const Kernel* kernel = (const Kernel*)opaque;
    Job job;
    memset(&job, 0, sizeof job);
    job.kernel = kernel;
    OrtStatus* status = read_inputs(kernel, context, &job);
    if (!status) status = kernel->def->prepare(kernel, context, &job);
    if (status || job.rows == 0) return status;
    size_t per_task = 16384 / (job.width ? job.width : 1);
    job.rows_per_task = per_task ? per_task : 1;
    size_t tasks = (job.rows + job.rows_per_task - 1) / job.rows_per_task;
    status = ORT_FN(kernel->api, KernelContext_ParallelFor)(context, run_task, tasks, 0, &job);
    if (!status && __atomic_load_n(&job.failed, __ATOMIC_RELAXED))
        status = error(kernel->api, kernel->def->name, "out of memory");
    return status;
}

static void op_destroy(void* kernel) { free(kernel); }

#define F TYPE_FLOAT
#define U8 TYPE_UINT8
#define S8 TYPE_INT8
#define NORM_FLOATS {"epsilon", "inverse_width", "tiny"}
#define OP(op_name_, ins, n_in, outs, n_out, floats_, ints_, prepare_)                          \
    {.name = op_name_, .input_types = ins, .inputs = n_in, .output_types = outs,                \
     .outputs = n_out, .floats = floats_, .ints = ints_, .prepare = prepare_}
#define LIST(...) {__VA_ARGS__}

static OpDef OPS[] = {
    OP("QuantizeRowsSigned", LIST(F), 1, LIST(S8, F), 2, LIST("floor"), LIST("has_min"),
       prepare_quantize_rows),
    OP("LayerNormQuantize", LIST(F, F, F), 3, LIST(F, U8, F), 3, NORM_FLOATS, LIST("quantize"),
       prepare_residual_norm),
    OP("ResidualNorm1", LIST(F, F, F, F, F, F), 6, LIST(F, U8, F), 3, NORM_FLOATS,
       LIST("quantize"), prepare_residual_norm),
    OP("ResidualNorm4", LIST(F, F, F, F, F, F, F, F, F, F, F, F), 12, LIST(F, U8, F), 3,
       NORM_FLOATS, LIST("quantize"), prepare_residual_norm),
    OP("GeluQuantize", LIST(F, F, F), 3, LIST(U8, F), 2,
       LIST("floor", "clamp", "c1", "c2", "c3", "c4"), LIST(NULL), prepare_gelu_quantize),
    OP("AttentionWeights", LIST(F, F, F, F), 4, LIST(U8), 1,
       LIST("exp_floor", "c3", "probability_scale"), LIST(NULL), prepare_attention_weights),
    OP("QueryQuantize", LIST(F, F, F), 3, LIST(U8, F), 2, LIST("floor"), LIST("group"),
       prepare_query_quantize),
    OP("ValueQuantize", LIST(F, F, F), 3, LIST(S8, F), 2, LIST("floor"), LIST("heads"),
       prepare_value_quantize),
    OP("ContextQuantize", LIST(F, F), 2, LIST(U8, F), 2, LIST("floor"), LIST(NULL),
       prepare_context_quantize),
};

/* The library's entry point, called by SessionOptions.register_custom_ops_library. */
EXPORT OrtStatus* RegisterCustomOps(OrtSessionOptions* options, const OrtApiBase* base) {
    const OrtApi* api = base->GetApi(ORT_API_VERSION_USED);
    if (!api) {
        const OrtApi* first = base->GetApi(1);
        return first ? ORT_FN(first, CreateStatus)(ORT_RUNTIME_EXCEPTION,
                                                   "cyberian kernels need ONNX Runtime API 17+")
                     : NULL;
    }
    OrtCustomOpDomain* domain = NULL;
    OrtStatus* status = ORT_FN(api, CreateCustomOpDomain)("ai.cyberian.int8", &domain);
    for (size_t i = 0; !status && i < sizeof OPS / sizeof OPS[0]; i++) {
        OrtCustomOp* op = &OPS[i].base;
        op->version = CUSTOM_OP_VERSION;
        op->GetName = op_name;
        op->GetExecutionProviderType = op_provider;
        op->GetInputType = op_input_type;
        op->GetInputTypeCount = op_input_count;
        op->GetOutputType = op_output_type;
        op->GetOutputTypeCount = op_output_count;
        op->KernelDestroy = op_destroy;
        op->GetInputCharacteristic = op_required;
        op->GetOutputCharacteristic = op_required;
        op->GetInputMemoryType = op_memory_type;
        op->GetVariadicInputMinArity = op_arity;
        op->GetVariadicInputHomogeneity = op_arity;
        op->GetVariadicOutputMinArity = op_arity;
        op->GetVariadicOutputHomogeneity = op_arity;
        op->CreateKernelV2 = op_create;
        op->KernelComputeV2 = op_compute;
        status = ORT_FN(api, CustomOpDomain_Add)(domain, op);
    }
    if (!status) status = ORT_FN(api, AddCustomOpDomain)(options, domain);
    return status; /* the domain lives as long as the process: sessions keep pointers to it */
}
