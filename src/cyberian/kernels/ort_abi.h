/* The few parts of ONNX Runtime's stable C ABI that the fused kernels use.
 *
 * Written for cyberian from the public C API (onnxruntime_c_api.h, API
 * version 17+): opaque handles, the function table's slot numbers (the table
 * only ever grows at its end, so a slot's number never changes), and the
 * custom-op struct up to the fields of its version 16. Nothing here is
 * copied; it declares only what kernels.c calls.
 */
#ifndef CYBERIAN_ORT_ABI_H
#define CYBERIAN_ORT_ABI_H

#include <stddef.h>
#include <stdint.h>

typedef struct OrtStatus OrtStatus;
typedef struct OrtKernelInfo OrtKernelInfo;
typedef struct OrtKernelContext OrtKernelContext;
typedef struct OrtValue OrtValue;
typedef struct OrtTensorTypeAndShapeInfo OrtTensorTypeAndShapeInfo;
typedef struct OrtSessionOptions OrtSessionOptions;
typedef struct OrtCustomOpDomain OrtCustomOpDomain;
typedef void OrtApi; /* a table of function pointers, read by slot */

typedef struct OrtApiBase {
    const OrtApi* (*GetApi)(uint32_t version);
    const char* (*GetVersionString)(void);
} OrtApiBase;

enum { ORT_API_VERSION_USED = 17 }; /* KernelContext_ParallelFor arrived in 17 */
enum { ORT_RUNTIME_EXCEPTION = 6 }; /* OrtErrorCode */
enum { TYPE_FLOAT = 1, TYPE_UINT8 = 2, TYPE_INT8 = 3 }; /* ONNXTensorElementDataType */
enum { INPUT_OUTPUT_REQUIRED = 0 };                    /* OrtCustomOpInputOutputCharacteristic */

/* Slot numbers in OrtApi. */
enum {
    SLOT_CreateStatus = 0,
    SLOT_GetErrorMessage = 2,
    SLOT_CreateCustomOpDomain = 26,
    SLOT_CustomOpDomain_Add = 27,
    SLOT_AddCustomOpDomain = 28,
    SLOT_GetTensorMutableData = 51,
    SLOT_GetTensorElementType = 60,
    SLOT_GetDimensionsCount = 61,
    SLOT_GetDimensions = 62,
    SLOT_GetTensorTypeAndShape = 65,
    SLOT_KernelInfoGetAttribute_float = 85,
    SLOT_KernelInfoGetAttribute_int64 = 86,
    SLOT_KernelContext_GetInputCount = 88,
    SLOT_KernelContext_GetInput = 90,
    SLOT_KernelContext_GetOutput = 91,
    SLOT_ReleaseStatus = 93,
    SLOT_ReleaseTensorTypeAndShapeInfo = 99,
    SLOT_KernelContext_ParallelFor = 274,
};

typedef OrtStatus* (*CreateStatus_fn)(int code, const char* message);
typedef const char* (*GetErrorMessage_fn)(const OrtStatus* status);
typedef OrtStatus* (*CreateCustomOpDomain_fn)(const char* domain, OrtCustomOpDomain** out);
typedef OrtStatus* (*CustomOpDomain_Add_fn)(OrtCustomOpDomain* domain, const void* op);
typedef OrtStatus* (*AddCustomOpDomain_fn)(OrtSessionOptions* options, OrtCustomOpDomain* domain);
typedef OrtStatus* (*GetTensorMutableData_fn)(OrtValue* value, void** out);
typedef OrtStatus* (*GetTensorElementType_fn)(const OrtTensorTypeAndShapeInfo* info, int* out);
typedef OrtStatus* (*GetDimensionsCount_fn)(const OrtTensorTypeAndShapeInfo* info, size_t* out);
typedef OrtStatus* (*GetDimensions_fn)(const OrtTensorTypeAndShapeInfo* info, int64_t* dims,
                                       size_t count);
typedef OrtStatus* (*GetTensorTypeAndShape_fn)(const OrtValue* value,
                                               OrtTensorTypeAndShapeInfo** out);
typedef OrtStatus* (*KernelInfoGetAttribute_float_fn)(const OrtKernelInfo* info, const char* name,
                                                      float* out);
typedef OrtStatus* (*KernelInfoGetAttribute_int64_fn)(const OrtKernelInfo* info, const char* name,
                                                      int64_t* out);
typedef OrtStatus* (*KernelContext_GetInputCount_fn)(const OrtKernelContext* context, size_t* out);
typedef OrtStatus* (*KernelContext_GetInput_fn)(const OrtKernelContext* context, size_t index,
                                                const OrtValue** out);
typedef OrtStatus* (*KernelContext_GetOutput_fn)(OrtKernelContext* context, size_t index,
                                                 const int64_t* dims, size_t count, OrtValue** out);
typedef void (*ReleaseStatus_fn)(OrtStatus* status);
typedef void (*ReleaseTensorTypeAndShapeInfo_fn)(OrtTensorTypeAndShapeInfo* info);
typedef OrtStatus* (*KernelContext_ParallelFor_fn)(const OrtKernelContext* context,
                                                   void (*fn)(void*, size_t), size_t total,
                                                   size_t num_batch, void* user_data);

/* The function in ``api``'s slot ``name``, typed. */
#define ORT_FN(api, name) ((name##_fn)(((void* const*)(api))[SLOT_##name]))

/* OrtCustomOp, version 16 layout. */
typedef struct OrtCustomOp {
    uint32_t version;
    void* (*CreateKernel)(const struct OrtCustomOp* op, const OrtApi* api, const OrtKernelInfo* info);
    const char* (*GetName)(const struct OrtCustomOp* op);
    const char* (*GetExecutionProviderType)(const struct OrtCustomOp* op);
    int (*GetInputType)(const struct OrtCustomOp* op, size_t index);
    size_t (*GetInputTypeCount)(const struct OrtCustomOp* op);
    int (*GetOutputType)(const struct OrtCustomOp* op, size_t index);
    size_t (*GetOutputTypeCount)(const struct OrtCustomOp* op);
    void (*KernelCompute)(void* kernel, OrtKernelContext* context);
    void (*KernelDestroy)(void* kernel);
    int (*GetInputCharacteristic)(const struct OrtCustomOp* op, size_t index);
    int (*GetOutputCharacteristic)(const struct OrtCustomOp* op, size_t index);
    int (*GetInputMemoryType)(const struct OrtCustomOp* op, size_t index);
    int (*GetVariadicInputMinArity)(const struct OrtCustomOp* op);
    int (*GetVariadicInputHomogeneity)(const struct OrtCustomOp* op);
    int (*GetVariadicOutputMinArity)(const struct OrtCustomOp* op);
    int (*GetVariadicOutputHomogeneity)(const struct OrtCustomOp* op);
    OrtStatus* (*CreateKernelV2)(const struct OrtCustomOp* op, const OrtApi* api,
                                 const OrtKernelInfo* info, void** kernel);
    OrtStatus* (*KernelComputeV2)(void* kernel, OrtKernelContext* context);
    OrtStatus* (*InferOutputShapeFn)(const struct OrtCustomOp* op, void* context);
} OrtCustomOp;

enum { CUSTOM_OP_VERSION = 16 };

#endif
