/*
 * Replay driver for libFuzzer targets when libFuzzer is not available (gcc builds).
 *
 * Link it with any fuzz_*.c that defines LLVMFuzzerTestOneInput (and optionally
 * LLVMFuzzerInitialize): every file named on the command line, and every regular file of
 * every directory named there (not recursive, in name order, dot files skipped), is read
 * whole and passed to LLVMFuzzerTestOneInput once. Arguments starting with '-' (libFuzzer
 * flags) are ignored, so a ctest command line can be shared with the libFuzzer build.
 * Exits 1 if an argument cannot be read or no input was found, so a misplaced corpus fails
 * the test instead of passing vacuously. Crashes surface as crashes, as under libFuzzer.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

#define REPLAY_MAX_INPUT (64 * 1024 * 1024)

static int
replay_file(const char *path, size_t *count)
{
	struct stat sb;
	uint8_t *buf = NULL;
	size_t len;
	FILE *f;
	int ret = -1;

	if ((f = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fstat(fileno(f), &sb) == -1 || sb.st_size > REPLAY_MAX_INPUT) {
		fprintf(stderr, "%s: cannot size the file or larger than 64 MiB\n", path);
		goto out;
	}
	/* an exact-size heap copy, so ASan notices reads past the input */
	if ((buf = malloc(sb.st_size > 0 ? (size_t)sb.st_size : 1)) == NULL) {
		fprintf(stderr, "%s: out of memory\n", path);
		goto out;
	}
	len = fread(buf, 1, (size_t)sb.st_size, f);
	if (ferror(f)) {
		fprintf(stderr, "%s: read error\n", path);
		goto out;
	}
	LLVMFuzzerTestOneInput(buf, len);
	(*count)++;
	ret = 0;
out:
	free(buf);
	fclose(f);
	return ret;
}

static int
replay_dir(const char *dir, size_t *count)
{
	struct dirent **names = NULL;
	struct stat sb;
	char path[4096];
	int i, n, ret = 0;

	if ((n = scandir(dir, &names, NULL, alphasort)) == -1) {
		fprintf(stderr, "%s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (names[i]->d_name[0] != '.' &&
		    snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name) <
			    (int)sizeof(path) &&
		    stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && replay_file(path, count) != 0)
			ret = -1;
		free(names[i]);
	}
	free(names);
	return ret;
}

int
main(int argc, char **argv)
{
	struct stat sb;
	size_t count = 0;
	int i, ret = 0;

	if (LLVMFuzzerInitialize != NULL)
		LLVMFuzzerInitialize(&argc, &argv);
	for (i = 1; i < argc; i++) {
		if (argv[i][0] == '-')
			continue;
		if (stat(argv[i], &sb) == -1) {
			fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
			ret = 1;
		} else if (S_ISDIR(sb.st_mode) ? replay_dir(argv[i], &count) != 0 :
						 replay_file(argv[i], &count) != 0) {
			ret = 1;
		}
	}
	if (count == 0) {
		fprintf(stderr, "%s: no input to replay\n", argv[0]);
		return 1;
	}
	printf("%s: replayed %zu inputs\n", argv[0], count);
	return ret;
}
