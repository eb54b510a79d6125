package backfill.hadoop;

/**
 * Cuts every line of a byte stream to at most {@code limit + 1} bytes: the bytes of a longer
 * line after that, up to its {@code '\n'}, are dropped. A line ends at {@code '\n'} only (the
 * job reads with {@code lineSep = "\n"}), so the {@code '\r'} of a {@code "\r\n"} line counts as
 * one of its bytes. Chunks are filtered in place and may end anywhere in a line.
 */
final class LineCutter {
    private final long keep;
    private long run; // bytes of the current line passed on so far

    LineCutter(long limit) {
        this.keep = limit + 1;
    }

    /** Keeps the bytes of {@code b[off, off + n)} to pass on at its start; returns how many. */
    int cut(byte[] b, int off, int n) {
        int w = off;
        for (int i = off, end = off + n; i < end; i++) {
            byte c = b[i];
            if (c == '\n') {
                run = 0;
                b[w++] = c;
            } else if (run < keep) {
                run++;
                b[w++] = c;
            }
        }
        return w - off;
    }

    void reset() {
        run = 0;
    }
}
