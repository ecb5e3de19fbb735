/*
** Image data sets: FashionMNIST (IDX files, gzip or plain) and CIFAR-10
** (binary batches), plus a deterministic train/validation split.
**
** Images are stored as raw 8-bit pixels, NHWC: image i, row y, column x,
** channel c is pixels[((i*h + y)*w + x)*c_count + c]. Loading never crashes on
** bad input: a missing, truncated or malformed file, a label out of range or
** an image/label count mismatch returns an error whose message names the file
** and the problem.
*/
#ifndef BNAS_DATA_H
#define BNAS_DATA_H

#include <stdint.h>

/* Where the Debian package dataset-fashion-mnist installs the files. */
#define DATA_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

/* Images in the standard files of each set (training file, test file). */
#define DATA_FASHION_MNIST_TRAIN 60000
#define DATA_FASHION_MNIST_TEST 10000
#define DATA_CIFAR10_TRAIN 50000
#define DATA_CIFAR10_TEST 10000

typedef struct {
    int n;           /* number of images */
    int h, w, c;     /* image shape */
    int classes;     /* number of classes (10 for both sets) */
    uint8_t *pixels; /* (n, h, w, c) */
    uint8_t *labels; /* (n), each < classes */
} dataset;

/* Loads one IDX image file and one IDX label file (gzip-compressed or plain,
   detected from the content). */
int data_load_idx(dataset *d, const char *images_path, const char *labels_path);

/* Loads FashionMNIST train (60,000) and test (10,000) from dir, which holds
   train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz],
   t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz].
   dir NULL means $BNAS_FASHION_MNIST_DIR, else DATA_FASHION_MNIST_DIR. */
int data_load_fashion_mnist(dataset *train, dataset *test, const char *dir);

/* Loads CIFAR-10 binary batches (each record: 1 label byte + 3072 pixel bytes,
   channel-planar 3x32x32), converting to HWC. */
int data_load_cifar10_files(dataset *d, const char *const *paths, int n_paths);

/* Loads data_batch_1.bin..data_batch_5.bin as train and test_batch.bin as test
   from dir (the "cifar-10-batches-bin" folder). */
int data_load_cifar10(dataset *train, dataset *test, const char *dir);

/* Loads the data set called name: "fashion" (also "fashion-mnist", "fashion_mnist"; dir may be
   NULL, see data_load_fashion_mnist) or "cifar10" ("cifar-10"; dir required). Any other name is
   BN_EARG, naming the known ones. */
int data_load_named(const char *name, dataset *train, dataset *test, const char *dir);

/* Splits full into train and val: a permutation drawn from the keyed stream
   (seed, 0, RNG_SPLIT) puts n_val images in val and the rest in train, each
   part keeping the original order. 0 <= n_val < full->n. */
int data_split(dataset *train, dataset *val, const dataset *full, int n_val, uint64_t seed);

/* Checks the image counts a run asks of the data set called name, whose
   training file holds n_full images and test file n_test_have: asked[1] for
   validation (leaving at least one to train), asked[0] for training (0: the
   rest) and both together out of the training file, asked[2] (0: all) out of
   the test file. keys[0..2] name the three counts in messages ("data.train",
   "--train-images"; NULL: not asked). Returns BN_OK, or BN_EARG naming the key
   and both numbers: "data.train: 70000 images asked, fashion_mnist has 60000
   training images". */
int data_check_counts(const char *name, int n_full, int n_test_have, const char *const keys[3],
                      const int asked[3]);

/* A view of images [start, start+n) of d (no copy; do not free). */
dataset data_slice(const dataset *d, int start, int n);

void data_free(dataset *d);

#endif /* BNAS_DATA_H */
