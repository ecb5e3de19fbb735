/* Version of bnas, reported by `bnas --version` and stored in every study. */
const char *bnas_version(void) { return "0.1.0"; }
