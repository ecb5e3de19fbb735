/*
** FeFET XNOR logic-in-memory (Yayla et al., IEEE TCAS-I 69(6), 2022;
** papers.md section 4): speeding the in-memory XNOR up (shorter sensing)
** raises the probability that a product reads wrong. A table of settings
** (speed-up in percent, p01, p10) gives, per setting, the XNOR product error
** rates (engine/errmodel.h, XNOR products: hidden binary layers and the
** classifier; the first layer multiplies pixels and is not an XNOR layer).
** Row 0 is the nominal speed; rows are increasingly fast.
**
** Speed-up. A setting's speed-up S is in percent of the nominal XNOR
** throughput (S = 50: 1.5x the nominal operations per second); our
** definition, as the paper's is not available. The network's overall XNOR
** speed-up is the mean of its layers' S weighted by each layer's XNOR count
** (products per image: positions x out_c x fan_in for a conv before pooling,
** out_c x fan_in for dense).
**
** Run time (our reconstruction of the paper's per-layer adaptation): layers
** are visited in decreasing order of XNOR count; each takes the fastest
** setting whose validation accuracy (mean over repeats, with the settings
** already chosen for earlier-visited layers and the nominal speed for the
** rest) stays >= reference - budget; a layer where no faster setting fits
** stays nominal. Design time: the network is trained with product errors
** (bnas train --xnor-p) and one uniform setting is chosen for all layers, the
** fastest within the budget; the run-time search then applies on top.
*/
#ifndef BNAS_LIM_H
#define BNAS_LIM_H

#include <stdint.h>

#include "engine/data.h"
#include "engine/errmodel.h"
#include "engine/packed.h"
#include "evaluators/fefet.h"

/* The shipped ILLUSTRATIVE speed-up table, evaluators/data/lim_speedup.csv (read at
   run time from eval_data_dir()); fefet_table's rows with t = speed-up in percent. */
int lim_table_default(fefet_table *tb);

/* XNOR products per image of layer l (0 for the first layer). */
double lim_xnor_count(const packed_layer *L);

/* The XNOR-count-weighted mean speed-up of setting[l] (row indices of tb). */
double lim_speedup(const packed_net *p, const fefet_table *tb, const int *setting);

/* The errmodel of per-layer settings (row indices of tb; first layer ignored). */
void lim_model(errmodel *m, const packed_net *p, const fefet_table *tb, const int *setting);

/* Mean accuracy over repeats of p on d under the settings. */
int lim_accuracy(const packed_net *p, const fefet_table *tb, const int *setting, const dataset *d, int repeats,
                 uint64_t seed, int threads, double *acc);

/* Run-time greedy search (see the file comment): setting[l] for every layer,
   accuracy >= floor_acc on d. *acc gets the accuracy of the result (or of the
   nominal setting if nothing fits), *evaluated the accuracies computed. */
int lim_runtime_search(const packed_net *p, const fefet_table *tb, double floor_acc, const dataset *d, int repeats,
                       uint64_t seed, int threads, int *setting, double *acc, int *evaluated);

/* Fastest uniform setting (row index; 0 if none faster fits) with accuracy >=
   floor_acc on d; *acc its accuracy. */
int lim_uniform_search(const packed_net *p, const fefet_table *tb, double floor_acc, const dataset *d, int repeats,
                       uint64_t seed, int threads, int *row, double *acc);

#endif /* BNAS_LIM_H */
