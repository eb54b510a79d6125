package backfill.hadoop;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.zip.Deflater;
import java.util.zip.GZIPOutputStream;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;

/**
 * Writes a gzip copy of a plain file with its lines cut to {@code limit + 1} bytes
 * ({@link LineCutter}), streaming (memory stays at one buffer whatever the line lengths).
 * The job reads a plain file that holds a line too long for Hadoop's line reader this way.
 */
public final class GuardedGzipCopy {
    private static final int BUFFER = 1 << 16;

    private GuardedGzipCopy() {
    }

    /** Copies {@code source} to {@code target} (overwritten); returns the bytes kept. */
    public static long copy(Configuration conf, String source, String target, long limit)
            throws IOException {
        Path src = new Path(source);
        Path dst = new Path(target);
        LineCutter cutter = new LineCutter(limit);
        byte[] buf = new byte[BUFFER];
        long kept = 0;
        try (InputStream in = src.getFileSystem(conf).open(src);
             OutputStream out = fastGzip(dst.getFileSystem(conf).create(dst, true))) {
            for (int n = in.read(buf); n >= 0; n = in.read(buf)) {
                int k = cutter.cut(buf, 0, n);
                out.write(buf, 0, k);
                kept += k;
            }
        }
        return kept;
    }

    private static OutputStream fastGzip(OutputStream out) throws IOException {
        return new GZIPOutputStream(out, BUFFER) {
            {
                def.setLevel(Deflater.BEST_SPEED);
            }
        };
    }
}
