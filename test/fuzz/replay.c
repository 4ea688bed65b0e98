/*
 * Corpus replay for compilers without libFuzzer: feeds every regular file
 * of the directories (or the files) named on the command line to
 * LLVMFuzzerTestOneInput. A broken property aborts, failing the test.
 */
#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define REPLAY_MAX_INPUT (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* @return 1 when a file was run, 0 when skipped, -1 on error */
static int
replay_file(const char *path)
{
	struct stat st;
	uint8_t *data;
	size_t n;
	FILE *f;

	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return 0;
	if ((size_t)st.st_size > REPLAY_MAX_INPUT) {
		fprintf(stderr, "replay: %s: too large\n", path);
		return -1;
	}
	f = fopen(path, "rb");
	if (f == NULL) {
		perror(path);
		return -1;
	}
	/* an exact-size allocation, so sanitizers see over-reads */
	data = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
	if (data == NULL) {
		fclose(f);
		return -1;
	}
	n = fread(data, 1, (size_t)st.st_size, f);
	fclose(f);
	LLVMFuzzerTestOneInput(data, n);
	free(data);
	return 1;
}

static int
replay_dir(const char *dir, size_t *count)
{
	char path[4096];
	struct dirent *de;
	DIR *d = opendir(dir);
	int rc;

	if (d == NULL) {
		perror(dir);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		rc = replay_file(path);
		if (rc < 0) {
			closedir(d);
			return -1;
		}
		*count += (size_t)rc;
	}
	closedir(d);
	return 0;
}

int
main(int argc, char **argv)
{
	struct stat st;
	size_t count = 0;
	int i, rc;

	if (argc < 2) {
		fprintf(stderr, "usage: %s corpus-dir-or-file...\n", argv[0]);
		return 2;
	}
	for (i = 1; i < argc; i++) {
		if (stat(argv[i], &st) != 0) {
			perror(argv[i]);
			return 1;
		}
		if (S_ISDIR(st.st_mode)) {
			rc = replay_dir(argv[i], &count);
		} else {
			rc = replay_file(argv[i]);
			count += rc > 0 ? (size_t)rc : 0;
		}
		if (rc < 0)
			return 1;
	}
	printf("replayed %zu inputs\n", count);
	return count > 0 ? 0 : 1;
}
