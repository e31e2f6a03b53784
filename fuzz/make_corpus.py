#!/usr/bin/env python3
"""Writes the seed corpora fuzz/corpus/<target>/ from the kernel's request numbers and structs.

Each seed is a byte stream in the engine's encoding (fuzz/fuzz_support.h): an opcode byte, then
its operands. Run it from anywhere: python3 fuzz/make_corpus.py (it rewrites the seed files; the
inputs libFuzzer adds to a corpus directory are left alone)."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# The kernel's numbers (include/zbuf/uapi/abi.h, checked there against the system's headers).
DMA_BUF_IOCTL_SYNC = 0x40086200
DMA_BUF_SET_NAME_A = 0x40046201
DMA_BUF_SET_NAME_B = 0x40086201
DMA_BUF_IOCTL_EXPORT_SYNC_FILE = 0xC0086202
DMA_BUF_IOCTL_IMPORT_SYNC_FILE = 0x40086203
SYNC_IOC_MERGE = 0xC0303E03
SYNC_IOC_FILE_INFO = 0xC0383E04
SYNC_IOC_SET_DEADLINE = 0x40103E05
DMA_HEAP_IOCTL_ALLOC = 0xC0184800
UDMABUF_CREATE = 0x40187542
UDMABUF_CREATE_LIST = 0x40087543
IIO_BUFFER_GET_FD_IOCTL = 0xC0046991
IIO_BUFFER_DMABUF_ATTACH_IOCTL = 0x40046992
IIO_BUFFER_DMABUF_DETACH_IOCTL = 0x40046993
IIO_BUFFER_DMABUF_ENQUEUE_IOCTL = 0x40106994
FUNCTIONFS_DMABUF_ATTACH = 0x40046783
FUNCTIONFS_DMABUF_DETACH = 0x40046784
FUNCTIONFS_DMABUF_TRANSFER = 0x40106785
FUNCTIONFS_ENDPOINT_REVMAP = 0x6781
FUNCTIONFS_ENDPOINT_DESC = 0x80096782
FUNCTIONFS_INTERFACE_REVMAP = 0x6780
# zbuf's own virtio-video calls (uapi/abi.h, "virtio-video").
VIRTIO_VIDEO_ALLOC = 0xC0287A00
VIRTIO_VIDEO_GET_UUID = 0xC0187A01
VIRTIO_VIDEO_DECODE = 0x40107A02
VIRTIO_VIDEO_IMPORT = 0xC0187A03
VIRTIO_VIDEO_DISPLAY = 0x40107A04
VIRTIO_VIDEO_DETACH = 0x40047A05
SYNC_READ, SYNC_WRITE, SYNC_RW, SYNC_END = 1, 2, 3, 4
O_RDONLY, O_RDWR, O_CLOEXEC = 0, 2, 0o2000000

ENGINE_OPS = 10


class Stream:
    """One seed, in the engine's encoding, for a target with `extra` operations and `requests`
    (its request table, in order)."""

    def __init__(self, extra, requests):
        self.extra = extra
        self.requests = requests
        self.b = bytearray()

    def op(self, n):
        self.b.append(n)
        return self

    def u8(self, v):
        self.b.append(v & 0xFF)
        return self

    def blob(self, data):
        self.b += struct.pack("<H", len(data)) + data
        return self

    def ioctl(self, fd, cmd, arg=b"", fds=(), null=False, raw=False):
        """ioctl on pool entry `fd`; `fds`: pool entries for the fd fields the target fixes up."""
        self.op(0).u8(fd)
        if raw or cmd not in self.requests:
            self.u8(0xC0).b += struct.pack("<I", cmd)
        else:
            self.u8(self.requests.index(cmd))
        self.u8(0x80 if null else 0)
        if not null:
            self.blob(arg)
            for f in fds:
                self.u8(f)
        return self

    def read(self, fd, n):
        self.op(3).u8(fd).b += struct.pack("<H", n)
        return self

    def write(self, fd, data):
        return self.op(4).u8(fd).blob(data)

    def close(self, index):
        return self.op(5).u8(index)

    def dup(self, fd):
        return self.op(6).u8(fd)

    def poll(self, fd, events):
        self.op(7).u8(0).u8(fd).b += struct.pack("<H", events)
        return self

    def lseek(self, fd, whence):
        return self.op(8).u8(fd).u8(0).u8(whence)  # length kind 0: offset 0

    def mmap(self, fd):
        return self.op(9).u8(fd).u8(0x43).u8(3).u8(0).u8(0)  # one page, RW, shared

    def x(self, n, *operands):
        """The target's own operation n."""
        self.op(ENGINE_OPS + n)
        for v in operands:
            self.u8(v)
        return self


def write_corpus(target, seeds):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, f"seed-{name}"), "wb") as f:
            f.write(bytes(data))


def dma_buf():
    req = [DMA_BUF_IOCTL_SYNC, DMA_BUF_SET_NAME_A, DMA_BUF_SET_NAME_B,
           DMA_BUF_IOCTL_EXPORT_SYNC_FILE, DMA_BUF_IOCTL_IMPORT_SYNC_FILE, SYNC_IOC_MERGE]
    S = lambda: Stream(5, req)  # noqa: E731
    q = struct.pack
    # The setup reads the first bytes too: keep them small (pool: 0 buffer, 1 sync file).
    return {
        "sync": S().ioctl(0, DMA_BUF_IOCTL_SYNC, q("<Q", SYNC_RW))
                   .ioctl(0, DMA_BUF_IOCTL_SYNC, q("<Q", SYNC_RW | SYNC_END))
                   .ioctl(0, DMA_BUF_IOCTL_SYNC, q("<Q", 8)).b,
        "name": S().ioctl(0, DMA_BUF_SET_NAME_B, b"camera-frame\0").lseek(0, 2)
                   .ioctl(0, DMA_BUF_SET_NAME_A, b"x" * 32).b,
        "export": S().x(3, 0, 1).ioctl(0, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, q("<Ii", SYNC_WRITE, -1))
                     .x(2, 0).poll(0, 5).b,
        "import": S().ioctl(0, DMA_BUF_IOCTL_IMPORT_SYNC_FILE, q("<Ii", SYNC_WRITE, 0), fds=[1])
                     .poll(0, 4).x(2, 0).ioctl(0, DMA_BUF_IOCTL_SYNC, q("<Q", SYNC_READ)).b,
        "merge": S().x(1, 0).ioctl(1, SYNC_IOC_MERGE, b"m\0".ljust(48, b"\0"), fds=[2]).b,
        "mmap": S().mmap(0).dup(0).close(0).lseek(1, 0).read(0, 16).write(0, b"abc").b,
        "unknown": S().ioctl(0, 0x40086204, q("<Q", 0), raw=True)
                      .ioctl(0, DMA_BUF_IOCTL_SYNC | (1 << 40) & 0xFFFFFFFF, q("<Q", 1), raw=True).b,
    }


def sync_file():
    req = [SYNC_IOC_MERGE, SYNC_IOC_FILE_INFO, SYNC_IOC_SET_DEADLINE, DMA_BUF_IOCTL_EXPORT_SYNC_FILE]
    S = lambda: Stream(3, req)  # noqa: E731
    q = struct.pack
    info = lambda n: b"\0" * 32 + q("<iIIIQ", 0, 0, n, 0, 0)  # noqa: E731
    return {
        "merge": S().ioctl(0, SYNC_IOC_MERGE, b"merged\0".ljust(48, b"\0"), fds=[1]).x(1, 0)
                    .x(1, 1).b,
        "info": S().ioctl(0, SYNC_IOC_FILE_INFO, info(0)).ioctl(0, SYNC_IOC_FILE_INFO, info(1), fds=[1]).b,
        "info-merged": S().x(0, 0x31).ioctl(0, SYNC_IOC_MERGE, b"\0" * 48, fds=[1])
                          .ioctl(3, SYNC_IOC_FILE_INFO, info(4), fds=[1]).x(1, 0).b,
        "deadline": S().ioctl(0, SYNC_IOC_SET_DEADLINE, q("<QQ", 1 << 40, 0))
                       .ioctl(0, SYNC_IOC_SET_DEADLINE, q("<QQ", 0, 1)).poll(0, 1).b,
        "flags": S().ioctl(0, SYNC_IOC_MERGE, b"\0" * 40 + q("<II", 1, 0), fds=[1])
                    .ioctl(0, SYNC_IOC_FILE_INFO, b"\0" * 36 + q("<I", 1)).b,
    }


def heap():
    req = [DMA_HEAP_IOCTL_ALLOC, DMA_BUF_IOCTL_SYNC, DMA_BUF_IOCTL_EXPORT_SYNC_FILE]
    S = lambda: Stream(1, req)  # noqa: E731
    q = lambda ln, fd, ff, hf: struct.pack("<QIIQ", ln, fd, ff, hf)  # noqa: E731
    return {
        "alloc": S().ioctl(0, DMA_HEAP_IOCTL_ALLOC, q(1 << 20, 0, O_RDWR | O_CLOEXEC, 0))
                    .ioctl(1, DMA_BUF_IOCTL_SYNC, struct.pack("<Q", SYNC_RW)).mmap(1).b,
        "alloc-edges": S().ioctl(0, DMA_HEAP_IOCTL_ALLOC, q(0, 0, O_RDWR, 0))
                          .ioctl(0, DMA_HEAP_IOCTL_ALLOC, q(2**64 - 1, 0, O_RDWR, 0))
                          .ioctl(0, DMA_HEAP_IOCTL_ALLOC, q(4096, 3, O_RDWR, 0))
                          .ioctl(0, DMA_HEAP_IOCTL_ALLOC, q(4096, 0, 0o4000, 0))
                          .ioctl(0, DMA_HEAP_IOCTL_ALLOC, q(4096, 0, O_RDWR, 1)).b,
        "alloc-sizes": S().ioctl(0, 0xC0104800, q(4097, 0, O_RDONLY, 0)[:16], raw=True)
                          .ioctl(0, 0x40184800, q(4096, 0, O_RDWR, 0), raw=True)
                          .ioctl(0, 0xC0184801, q(4096, 0, O_RDWR, 0), raw=True).b,
        "hugepage": S().x(0, 1, 0).ioctl(1, DMA_HEAP_IOCTL_ALLOC, q(2 << 20, 0, O_RDWR, 0)).b,
    }


def udmabuf():
    req = [UDMABUF_CREATE, UDMABUF_CREATE_LIST, DMA_BUF_IOCTL_SYNC]
    S = lambda: Stream(2, req)  # noqa: E731
    create = lambda flags, off, size: struct.pack("<IIQQ", 0, flags, off, size)  # noqa: E731
    item = lambda off, size: struct.pack("<IIQQ", 0, 0, off, size)  # noqa: E731
    # The setup's first byte 0x04 is a 2-page memfd, unsealed; x(0, 0x14) a 2-page sealed one.
    return {
        "create": S().x(0, 0x14).ioctl(0, UDMABUF_CREATE, create(1, 0, 8192), fds=[2]).mmap(3).b,
        "create-unsealed": S().ioctl(0, UDMABUF_CREATE, create(1, 0, 4096), fds=[1]).b,
        "create-bad": S().x(0, 0x14).ioctl(0, UDMABUF_CREATE, create(0, 1, 4096), fds=[2])
                         .ioctl(0, UDMABUF_CREATE, create(0, 0, 0), fds=[2])
                         .ioctl(0, UDMABUF_CREATE, create(0, 0, 1 << 30), fds=[2])
                         .ioctl(0, UDMABUF_CREATE, create(0, 0, 4096), fds=[0]).b,
        "list": S().x(0, 0x14).ioctl(0, UDMABUF_CREATE_LIST,
                                     struct.pack("<II", 1, 2) + item(0, 4096) + item(4096, 4096),
                                     fds=[2, 2]).b,
        "list-limits": S().ioctl(0, UDMABUF_CREATE_LIST, struct.pack("<II", 0, 0))
                          .ioctl(0, UDMABUF_CREATE_LIST, struct.pack("<II", 0, 1025)).b,
    }


def iio():
    req = [IIO_BUFFER_GET_FD_IOCTL, IIO_BUFFER_DMABUF_ATTACH_IOCTL, IIO_BUFFER_DMABUF_DETACH_IOCTL,
           IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, DMA_BUF_IOCTL_SYNC]
    q = struct.pack
    seeds = {}
    # First byte: the device's shape (bit 0 output, bit 1 no DMABUF, bit 2 two buffers); the
    # next two make the pool's first buffer (pool: 0 buffer). x(0, 0, 2): /dev/iio:device0 O_RDWR.
    for shape, tag in ((0, "adc"), (1, "dac"), (2, "nodmabuf"), (4, "two")):
        S = lambda: Stream(4, req).u8(shape).u8(0).u8(0)  # noqa: E731
        seeds[f"{tag}-dmabuf"] = (
            S().x(0, 0, 2).ioctl(1, IIO_BUFFER_GET_FD_IOCTL, q("<i", 0))
               .ioctl(2, IIO_BUFFER_DMABUF_ATTACH_IOCTL, q("<i", 0), fds=[0])
               .x(0, 1, 1).write(3, b"1\n")
               .ioctl(2, IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, q("<IIQ", 0, 0, 4096), fds=[0])
               .poll(0, 1).ioctl(0, DMA_BUF_IOCTL_SYNC, q("<Q", SYNC_READ))
               .ioctl(2, IIO_BUFFER_DMABUF_DETACH_IOCTL, q("<i", 0), fds=[0]).b)
        seeds[f"{tag}-fileio"] = (
            S().x(0, 0, 2).x(0, 2, 1).write(2, b"512\n").x(0, 1, 1).write(3, b"1\n")
               .read(1, 4096).write(1, b"\0" * 64).ioctl(1, IIO_BUFFER_GET_FD_IOCTL, q("<i", 3))
               .close(1).b)
    seeds["attrs"] = (Stream(4, req).u8(0).u8(0).u8(0).x(0, 6, 2).write(1, b"1000\n")
                      .x(0, 7, 0).read(2, 64).x(0, 8, 1).write(3, b"0\n").b)
    return seeds


def descriptors():
    """ffs-test.c's descriptors: full and high speed, an interface, bulk IN 0x81 and OUT 0x02."""
    body = struct.pack("<III", 3, 3, 3)
    for mps in (64, 512):
        body += bytes([9, 4, 0, 0, 2, 0xFF, 0, 0, 1])
        body += bytes([7, 5, 0x81, 2]) + struct.pack("<H", mps) + b"\0"
        body += bytes([7, 5, 0x02, 2]) + struct.pack("<H", mps) + b"\0"
    head = struct.pack("<II", 3, 8 + len(body))
    return head + body


def strings():
    body = struct.pack("<II", 1, 1) + struct.pack("<H", 0x0409) + b"zbuf fuzz\0"
    return struct.pack("<II", 2, 8 + len(body)) + body


def functionfs(ep0):
    req = [FUNCTIONFS_DMABUF_ATTACH, FUNCTIONFS_DMABUF_DETACH, FUNCTIONFS_DMABUF_TRANSFER,
           FUNCTIONFS_ENDPOINT_REVMAP, FUNCTIONFS_ENDPOINT_DESC, FUNCTIONFS_INTERFACE_REVMAP,
           0x6701, 0x6702, 0x6703]
    q = struct.pack
    # Pool: 0 ep0, 1 a buffer. x(0, 1, 2): ep1 O_RDWR; x(0, 2, 2): ep2.
    S = lambda shape=0: Stream(6, req).u8(shape).u8(0).u8(0)  # noqa: E731
    d, s = descriptors(), strings()
    if ep0:
        legacy = struct.pack("<IIII", 1, 16 + 32, 3, 3) + d[20:]
        return {
            "good": S().write(0, d).write(0, s).read(0, 48).x(0, 1, 2).x(0, 2, 2)
                       .ioctl(0, FUNCTIONFS_INTERFACE_REVMAP).b,
            "enumerate": S(2).write(0, d).write(0, s).read(0, 48).x(0, 1, 2)
                             .ioctl(2, FUNCTIONFS_ENDPOINT_DESC, b"\0" * 9).b,
            "legacy": S().write(0, legacy).write(0, s).b,
            "short": S().write(0, d[:15]).write(0, d[:-1]).write(0, d).write(0, s[:-1]).b,
            "strings-first": S().write(0, s).read(0, 12).b,
            "reset": S().write(0, d).write(0, s).x(0, 1, 2).close(0).close(1).x(0, 0, 2)
                        .write(0, d).b,
            "virtual": S().write(0, d[:8] + q("<I", 3 | 16) + d[12:]).write(0, s).x(0, 4, 2).b,
        }
    return {
        "transfer": S().x(0, 1, 2).ioctl(2, FUNCTIONFS_DMABUF_ATTACH, q("<i", 0), fds=[1])
                       .ioctl(2, FUNCTIONFS_DMABUF_TRANSFER, q("<iIQ", 0, 0, 4096), fds=[1])
                       .poll(1, 4).ioctl(2, FUNCTIONFS_DMABUF_DETACH, q("<i", 0), fds=[1]).b,
        "fileio": S().x(0, 1, 2).x(0, 2, 2).write(2, b"\x55" * 512).read(3, 512).b,
        "requests": S().x(0, 2, 2).ioctl(2, FUNCTIONFS_ENDPOINT_REVMAP)
                       .ioctl(2, FUNCTIONFS_ENDPOINT_DESC, b"\0" * 9).ioctl(2, 0x6701)
                       .ioctl(2, 0x6702).ioctl(2, 0x6703).b,
        "host": S().x(0, 1, 2).x(4, 1).ioctl(2, FUNCTIONFS_ENDPOINT_REVMAP).x(4, 0).x(4, 2)
                   .x(4, 3).b,
        "nosg": S(1).x(0, 1, 2).ioctl(2, FUNCTIONFS_DMABUF_ATTACH, q("<i", 0), fds=[1]).b,
    }


def core_ops():
    # op % 16: 0 leaf, 1 signal, 2 array, 3 chain, 4 merge, 5 callback, 6 wait, 7 resv,
    # 8 resv add, 9 resv check, 10 buffer, 11 cpu access, 12 buffer fence, 13 sync file,
    # 14 sync file merge, 15 check every fence.
    b = lambda *v: bytes(v)  # noqa: E731
    return {
        "array": b(0, 0, 0, 1, 2, 1, 0, 1, 0, 15, 1, 0, 0, 15, 1, 1, 0, 15),
        "chain": b(0, 0, 0, 1, 3, 1, 0, 1) + struct.pack("<Q", 2) + b(1, 0, 0, 15, 1, 1, 0, 15),
        "merge": b(0, 0, 0, 1, 4, 2, 0, 1, 1, 0, 0, 15),
        "resv": b(7, 0, 0, 8, 0, 0x10, 8, 0, 0x90, 9, 0x04, 9, 0x08, 1, 0, 0, 9, 0x04),
        "buffer": b(10, 0, 0, 0, 12, 0, 1, 11, 0, 11, 0x80, 13, 0, 13, 0, 14, 0, 1, 15),
        "callbacks": b(0, 0, 5, 0, 0, 5, 0, 1, 1, 0, 0, 5, 0, 0, 6, 0),
    }


def virtio():
    req = [VIRTIO_VIDEO_ALLOC, VIRTIO_VIDEO_GET_UUID, VIRTIO_VIDEO_DECODE, VIRTIO_VIDEO_IMPORT,
           VIRTIO_VIDEO_DISPLAY, VIRTIO_VIDEO_DETACH, DMA_BUF_IOCTL_SYNC]
    S = lambda: Stream(3, req)  # noqa: E731
    q = struct.pack
    # Pool: 0 the decoder, 1 the display, 2 a heap buffer; new fds follow. ALLOC's fix-up reads
    # one byte (2: fd and pad zeroed; 1: a UUID handed out before) and an index; IMPORT's a byte
    # (odd: a UUID handed out before) and an index; the others one pool index per fd field.
    alloc = q("<QIIII16s", 65536, O_RDWR | O_CLOEXEC, 0, 0, 0, b"\0" * 16)
    uuid = q("<II16s", 0, 0, b"\0" * 16)
    frame = lambda n: q("<IIQ", 0, 0, n)  # noqa: E731
    imp = q("<16sII", b"\0" * 16, O_RDWR | O_CLOEXEC, 0)
    return {
        "share": S().ioctl(0, VIRTIO_VIDEO_ALLOC, alloc, fds=[2])
                    .ioctl(0, VIRTIO_VIDEO_GET_UUID, uuid, fds=[3])
                    .ioctl(1, VIRTIO_VIDEO_IMPORT, imp, fds=[1, 0])
                    .ioctl(0, VIRTIO_VIDEO_DECODE, frame(5), fds=[3])
                    .ioctl(1, VIRTIO_VIDEO_DISPLAY, frame(5), fds=[4])
                    .poll(4, 4).ioctl(1, VIRTIO_VIDEO_DETACH, q("<i", 0), fds=[4]).b,
        "duplicate": S().ioctl(0, VIRTIO_VIDEO_ALLOC, alloc, fds=[2])
                        .ioctl(0, VIRTIO_VIDEO_ALLOC, alloc, fds=[3, 0])
                        .ioctl(0, VIRTIO_VIDEO_GET_UUID, uuid, fds=[4])
                        .ioctl(0, VIRTIO_VIDEO_GET_UUID, uuid, fds=[3]).b,
        "release": S().ioctl(0, VIRTIO_VIDEO_ALLOC, alloc, fds=[2])
                      .ioctl(1, VIRTIO_VIDEO_IMPORT, imp, fds=[1, 0])
                      .close(4).close(3).ioctl(1, VIRTIO_VIDEO_IMPORT, imp, fds=[1, 0]).b,
        "errors": S().ioctl(0, VIRTIO_VIDEO_GET_UUID, uuid, fds=[2])
                     .ioctl(0, VIRTIO_VIDEO_DECODE, frame(1), fds=[2])
                     .ioctl(1, VIRTIO_VIDEO_DISPLAY, frame(1), fds=[2])
                     .ioctl(1, VIRTIO_VIDEO_IMPORT, imp, fds=[0])
                     .ioctl(0, VIRTIO_VIDEO_DISPLAY, frame(1), fds=[2])
                     .ioctl(0, 0xC0287A09, alloc, raw=True)
                     .ioctl(0, VIRTIO_VIDEO_ALLOC, alloc, fds=[0]).b,
        "fences": S().ioctl(0, VIRTIO_VIDEO_ALLOC, alloc, fds=[2]).x(2, 3, 1)
                     .ioctl(0, VIRTIO_VIDEO_DECODE, frame(2), fds=[3])
                     .ioctl(3, DMA_BUF_IOCTL_SYNC, q("<Q", SYNC_READ))
                     .ioctl(3, DMA_BUF_IOCTL_SYNC, q("<Q", SYNC_READ | SYNC_END)).x(0, 1, 2).b,
    }


def iiod():
    """What libiio 0.24's network backend sends (iio_info, iio_attr, iio_readdev, iio_writedev),
    and the requests its limits are about: plain text, the wire protocol itself."""
    def t(*lines):
        return "".join(line + "\n" for line in lines).encode()
    return {
        "info": t("VERSION", "PRINT", "ZPRINT", "EXIT"),
        "readdev": t("VERSION", "TIMEOUT 5000", "OPEN iio:device0 1024 f",
                          "READBUF iio:device0 8192", "CLOSE iio:device0", "EXIT"),
        "writedev": t("OPEN iio:device1 512 f", "WRITEBUF iio:device1 64")
        + bytes(range(64)) + t("CLOSE iio:device1"),
        "attrs": t("READ iio:device0", "READ iio:device0 sampling_frequency",
                        "READ iio:device0 BUFFER length", "READ iio:device0 INPUT voltage0 raw",
                        "READ iio:device0 DEBUG direct_reg_access")
        + b"WRITE iio:device0 sampling_frequency 8\n1000000\0",
        "triggers": t("GETTRIG iio:device0", "SETTRIG iio:device0 trigger0",
                           "SETTRIG iio:device0", "SET iio:device0 BUFFERS_COUNT 4", "HELP"),
        "errors": t("OPEN nosuchdev 16 f", "READBUF iio:device0 16", "OPEN iio:device0 0 f",
                         "OPEN iio:device0 99999999999 ffffffff", "WRITE iio:device0 x 99999",
                         "CYCLIC", "READ", "WRITE iio:device0 BUFFER length 4")
        + b"12",
        "truncated": b"OPEN iio:device0 1024 f\nREADBUF iio:device0 40",
    }


def main():
    write_corpus("dma_buf", dma_buf())
    write_corpus("sync_file", sync_file())
    write_corpus("heap", heap())
    write_corpus("udmabuf", udmabuf())
    write_corpus("iio", iio())
    write_corpus("functionfs_ep0", functionfs(True))
    write_corpus("functionfs_ep", functionfs(False))
    write_corpus("core_ops", core_ops())
    write_corpus("virtio", virtio())
    write_corpus("iiod", iiod())


if __name__ == "__main__":
    main()
