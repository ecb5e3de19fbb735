/* Evaluator "accuracy": clean accuracy of the float path on validation and test. */
#include "engine/err.h"
#include "engine/train.h"
#include "evaluators/evaluator.h"

static int accuracy_run(const eval_context *ctx, const eval_params *params, eval_metrics *out) {
    (void)params;
    int rc = BN_OK;
    if (ctx->val && ctx->val->n) rc = eval_metrics_add(out, "accuracy.val", train_accuracy(ctx->n, ctx->val));
    if (!rc && ctx->test && ctx->test->n) rc = eval_metrics_add(out, "accuracy.test", train_accuracy(ctx->n, ctx->test));
    return rc;
}

const evaluator eval_accuracy = {
    "accuracy", "clean accuracy on the validation split (accuracy.val) and the test set (accuracy.test)",
    NULL, accuracy_run, NULL};
