/*
** The study report: one self-contained HTML file (inline CSS and SVG, no
** script, no network) describing a study database:
**   - the study's state (budget, counts, elapsed time; empty or unfinished
**     studies are said to be so),
**   - the Pareto front: one scatter plot per pair of objectives, the third
**     objective (if any) as the colour of the front's points,
**   - the hypervolume over trials, one curve per study given (so several
**     studies of the same spec with different strategies compare in one chart),
**   - accuracy over bit error rate for the front's models, from the fault
**     evaluator's metrics (fault.acc at its ber, fault.acc@R for its rates),
**   - the trial table (every trial with its metrics),
**   - the frozen spec.
** Library code: it never prints; errors are result codes with a message.
*/
#ifndef BNAS_REPORT_H
#define BNAS_REPORT_H

#include <stddef.h>

/* What was written, for the command line's summary. */
typedef struct {
    int trials;        /* trials in the study (all states) */
    int complete;      /* COMPLETE trials */
    int pending;       /* WAITING or RUNNING trials */
    int front;         /* Pareto front size */
    int ber_rates;     /* distinct bit error rates with fault accuracy on the front (0, 1: no curve) */
    int unfinished;    /* 1: the budget is not spent (the search can be resumed) */
    size_t bytes;      /* size of the HTML file */
} report_info;

/* Writes the report of study `db` to out_path. more[0..n_more) are further
   study files whose hypervolume curves are drawn next to db's (labelled by
   strategy and study name); they may be NULL when n_more is 0. Fails with
   BN_EFORMAT if a file is not a bnas study, BN_EIO if out_path cannot be
   written, BN_EDB on SQLite errors. info may be NULL. */
int report_write(const char *db, const char *const *more, int n_more, const char *out_path,
                 report_info *info);

#endif /* BNAS_REPORT_H */
