/* Evaluator "memory": size of the deployed packed model. */
#include "engine/err.h"
#include "evaluators/evaluator.h"

static int memory_run(const eval_context *ctx, const eval_params *params, eval_metrics *out) {
    (void)params;
    double weights = 0;
    for (int l = 0; l < ctx->n->n_layers; l++)
        weights += (double)ctx->n->layers[l].out_c * ctx->n->layers[l].fan_in;
    int rc = eval_metrics_add(out, "memory.bytes", (double)net_packed_bytes(ctx->n));
    if (!rc) rc = eval_metrics_add(out, "memory.weights", weights);
    if (!rc) rc = eval_metrics_add(out, "memory.macs", net_macs(ctx->n));
    return rc;
}

const evaluator eval_memory = {
    "memory", "deployed model size in bytes (memory.bytes), weight count (memory.weights), MACs per image (memory.macs)",
    NULL, memory_run, NULL};
