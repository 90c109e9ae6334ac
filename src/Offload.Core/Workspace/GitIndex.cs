using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Offload.Workspace;

/// <summary>One entry of a git index: a path from the worktree's root, its mode in the tree and its blob's id.</summary>
internal sealed record IndexEntry(string Path, byte[] PathBytes, int Mode, byte[] ObjectId);

/// <summary>
/// Writes a git index (version 2, SHA-1, no extensions) for files just written into a worktree, with the stat data
/// git itself would record (<c>statx</c> of each path), so git sees the worktree clean without reading a file again.
/// The format: https://git-scm.com/docs/index-format.
/// </summary>
internal static class GitIndex
{
    public const int RegularMode = 0x81A4;    // 0100644
    public const int ExecutableMode = 0x81ED; // 0100755
    public const int SymlinkMode = 0xA000;    // 0120000

    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxBasicStats = 0x7FF;

    /// <summary>Whether this system answers <c>statx</c> (Linux 4.11, glibc 2.28; a seccomp filter may refuse it).</summary>
    public static bool Supported { get; } = Probe();

    /// <summary>Writes <paramref name="indexPath"/> (through <c>index.lock</c>, as git does) for <paramref name="entries"/> under <paramref name="root"/>, sorted as git sorts them.</summary>
    public static void Write(string indexPath, string root, IReadOnlyList<IndexEntry> entries)
    {
        var sorted = entries.OrderBy(e => e.PathBytes, ByteOrder.Instance).ToList();
        var buffer = new ArrayBufferWriter<byte>(64 + (sorted.Count * 128));
        var header = buffer.GetSpan(12);
        "DIRC"u8.CopyTo(header);
        BinaryPrimitives.WriteUInt32BigEndian(header[4..], 2);
        BinaryPrimitives.WriteUInt32BigEndian(header[8..], (uint)sorted.Count);
        buffer.Advance(12);
        foreach (var entry in sorted)
        {
            var stat = Stat(Path.Join(root, entry.Path));
            var length = 62 + entry.PathBytes.Length;
            var padded = length + 8 - (length % 8); // 1 to 8 NULs, so the entry ends on a multiple of 8
            var span = buffer.GetSpan(padded)[..padded];
            span.Clear();
            BinaryPrimitives.WriteUInt32BigEndian(span, (uint)stat.Ctime.Seconds);
            BinaryPrimitives.WriteUInt32BigEndian(span[4..], stat.Ctime.Nanoseconds);
            BinaryPrimitives.WriteUInt32BigEndian(span[8..], (uint)stat.Mtime.Seconds);
            BinaryPrimitives.WriteUInt32BigEndian(span[12..], stat.Mtime.Nanoseconds);
            BinaryPrimitives.WriteUInt32BigEndian(span[16..], Dev(stat.DevMajor, stat.DevMinor));
            BinaryPrimitives.WriteUInt32BigEndian(span[20..], (uint)stat.Ino);
            BinaryPrimitives.WriteUInt32BigEndian(span[24..], (uint)entry.Mode);
            BinaryPrimitives.WriteUInt32BigEndian(span[28..], stat.Uid);
            BinaryPrimitives.WriteUInt32BigEndian(span[32..], stat.Gid);
            BinaryPrimitives.WriteUInt32BigEndian(span[36..], (uint)stat.Size);
            entry.ObjectId.CopyTo(span[40..]);
            BinaryPrimitives.WriteUInt16BigEndian(span[60..], (ushort)Math.Min(entry.PathBytes.Length, 0xFFF));
            entry.PathBytes.CopyTo(span[62..]);
            buffer.Advance(padded);
        }

        var checksum = SHA1.HashData(buffer.WrittenSpan);
        var lockPath = indexPath + ".lock";
        using (var stream = new FileStream(lockPath, FileMode.CreateNew, FileAccess.Write))
        {
            stream.Write(buffer.WrittenSpan);
            stream.Write(checksum);
        }

        File.Move(lockPath, indexPath, overwrite: true);
    }

    /// <summary>
    /// <c>st_dev</c> as glibc's <c>stat</c> reports it (<c>makedev</c>), cut to the 32 bits the index keeps.
    /// </summary>
    private static uint Dev(uint major, uint minor) =>
        unchecked((uint)(((ulong)(major & 0xFFF) << 8) | ((ulong)(minor & 0xFFFFFF00) << 12) | (minor & 0xFF)));

    private static StatxBuffer Stat(string path)
    {
        if (statx(AtFdCwd, path, AtSymlinkNoFollow, StatxBasicStats, out var buffer) != 0)
        {
            throw new IOException($"statx {path} failed: errno {Marshal.GetLastPInvokeError()}");
        }

        return buffer;
    }

    private static bool Probe()
    {
        try
        {
            return statx(AtFdCwd, "/", AtSymlinkNoFollow, StatxBasicStats, out _) == 0;
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            return false;
        }
    }

    // DllImport rather than LibraryImport: the generated marshalling needs AllowUnsafeBlocks; the buffer is blittable.
    [DllImport("libc", SetLastError = true)]
    private static extern int statx(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, out StatxBuffer buffer);

    /// <summary>Linux's <c>struct statx</c> (the same layout on every architecture), the fields the index needs.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    private struct StatxBuffer
    {
        [FieldOffset(20)] public uint Uid;
        [FieldOffset(24)] public uint Gid;
        [FieldOffset(32)] public ulong Ino;
        [FieldOffset(40)] public ulong Size;
        [FieldOffset(96)] public StatxTimestamp Ctime;
        [FieldOffset(112)] public StatxTimestamp Mtime;
        [FieldOffset(136)] public uint DevMajor;
        [FieldOffset(140)] public uint DevMinor;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct StatxTimestamp
    {
        public long Seconds;
        public uint Nanoseconds;
        public int Reserved;
    }

    /// <summary>Git's order of index entries: the paths' bytes, compared as unsigned.</summary>
    private sealed class ByteOrder : IComparer<byte[]>
    {
        public static readonly ByteOrder Instance = new();

        public int Compare(byte[]? x, byte[]? y) => x.AsSpan().SequenceCompareTo(y);
    }
}
