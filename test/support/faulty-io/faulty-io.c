// faulty-io: an LD_PRELOAD shim that makes a real process see a failing disk (EIO), for tests.
//
//   FAULTY_IO_TRIGGER  path of a file; while it exists, matching calls fail with EIO and do
//                      nothing. Looked at on every call, so a test arms and disarms it at will.
//                      Its content picks the calls: "write" (write, pwrite, writev, pwritev...),
//                      "sync" (fsync, fdatasync), or both; an empty file means both.
//   FAULTY_IO_SUFFIX   comma-separated endings of the paths that fail (default ".dat").
//
// The path is the one the descriptor was opened under (/proc/self/fd/N): a file opened as
// "1.dat.new" and then linked to "1.dat" still reads as "1.dat.new (deleted)" and never matches.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

enum { WRITE = 1, SYNC = 2 };

// Which of WRITE and SYNC the trigger arms (0: not armed). Only the stack is used: libuv calls
// in from its thread pool.
static int armed(void) {
  const char *trigger = getenv("FAULTY_IO_TRIGGER");
  if (!trigger) return 0;
  int fd = open(trigger, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char words[64];
  ssize_t n = read(fd, words, sizeof words - 1);
  close(fd);
  words[n > 0 ? n : 0] = '\0';
  int ops = (strstr(words, "write") ? WRITE : 0) | (strstr(words, "sync") ? SYNC : 0);
  return ops ? ops : WRITE | SYNC;
}

static int path_matches(int fd) {
  char link[32], path[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof path - 1);
  if (n <= 0) return 0;
  const char *list = getenv("FAULTY_IO_SUFFIX");
  if (!list || !*list) list = ".dat";
  while (*list) {
    size_t len = strcspn(list, ",");
    if (len > 0 && (size_t)n >= len && memcmp(path + n - len, list, len) == 0) return 1;
    list += len + (list[len] == ',');
  }
  return 0;
}

// The trigger is checked first: while it is absent, the cost is one failed open per call.
static int fails(int op, int fd) {
  return (armed() & op) && path_matches(fd);
}

#define REAL(name) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))
#define FAIL_IF(op, fd)                                                                            \
  do {                                                                                             \
    if (fails(op, fd)) {                                                                           \
      errno = EIO;                                                                                 \
      return -1;                                                                                   \
    }                                                                                              \
  } while (0)

ssize_t write(int fd, const void *buf, size_t count) {
  FAIL_IF(WRITE, fd);
  return REAL(write)(fd, buf, count);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
  FAIL_IF(WRITE, fd);
  return REAL(pwrite)(fd, buf, count, offset);
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off64_t offset) {
  FAIL_IF(WRITE, fd);
  return REAL(pwrite64)(fd, buf, count, offset);
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt) {
  FAIL_IF(WRITE, fd);
  return REAL(writev)(fd, iov, iovcnt);
}

ssize_t pwritev(int fd, const struct iovec *iov, int iovcnt, off_t offset) {
  FAIL_IF(WRITE, fd);
  return REAL(pwritev)(fd, iov, iovcnt, offset);
}

ssize_t pwritev64(int fd, const struct iovec *iov, int iovcnt, off64_t offset) {
  FAIL_IF(WRITE, fd);
  return REAL(pwritev64)(fd, iov, iovcnt, offset);
}

#ifdef RWF_HIPRI // glibc 2.26+ declares pwritev2 along with its flags
ssize_t pwritev2(int fd, const struct iovec *iov, int iovcnt, off_t offset, int flags) {
  FAIL_IF(WRITE, fd);
  return REAL(pwritev2)(fd, iov, iovcnt, offset, flags);
}

ssize_t pwritev64v2(int fd, const struct iovec *iov, int iovcnt, off64_t offset, int flags) {
  FAIL_IF(WRITE, fd);
  return REAL(pwritev64v2)(fd, iov, iovcnt, offset, flags);
}
#endif

int fsync(int fd) {
  FAIL_IF(SYNC, fd);
  return REAL(fsync)(fd);
}

int fdatasync(int fd) {
  FAIL_IF(SYNC, fd);
  return REAL(fdatasync)(fd);
}

// libuv (Node) reaches the kernel through syscall(2) for io_uring, and with io_uring on, file
// writes and fsyncs are queued to the kernel without any libc call this shim could see (tried:
// with UV_USE_IO_URING=1 they escaped it). Refusing io_uring_setup makes libuv fall back to its
// thread pool and libc. Write and sync syscalls made this way are checked like the calls above.
long syscall(long number, ...) {
  va_list ap;
  va_start(ap, number);
  long a[6];
  for (int i = 0; i < 6; i++) a[i] = va_arg(ap, long);
  va_end(ap);
  switch (number) {
#ifdef SYS_io_uring_setup
  case SYS_io_uring_setup:
    errno = ENOSYS;
    return -1;
#endif
  case SYS_write:
  case SYS_pwrite64:
  case SYS_writev:
  case SYS_pwritev:
#ifdef SYS_pwritev2
  case SYS_pwritev2:
#endif
    FAIL_IF(WRITE, (int)a[0]);
    break;
  case SYS_fsync:
  case SYS_fdatasync:
    FAIL_IF(SYNC, (int)a[0]);
    break;
  }
  return REAL(syscall)(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}
