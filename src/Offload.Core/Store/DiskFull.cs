using Microsoft.Data.Sqlite;

namespace Offload.Store;

/// <summary>
/// No space is left on the disk that holds <see cref="Path"/>. Nothing of the write that met it was stored, and
/// writes work again once space is freed: the daemon keeps what it has, and goes on by itself when there is room.
/// </summary>
public sealed class DiskFullException(string path, Exception? inner = null) : Exception($"disk full at {path}", inner)
{
    /// <summary>Below this much free space a failed write is taken for a full disk (a page of SQLite's WAL, a git object).</summary>
    private const long NearlyFull = 1024 * 1024;

    private const int Enospc = 28, Edquot = 122;

    public string Path { get; } = path;

    public string Hint =>
        $"free some space on the disk that holds {Path} (`df -h {Path}` shows it); nothing stored was lost, and running tasks go on by themselves once there is room";

    /// <summary>
    /// The disk-full error behind <paramref name="e"/>, if that is what it is: ENOSPC or a quota from the OS (also
    /// in git's words), SQLite's SQLITE_FULL, or an I/O error of SQLite while the disk at <paramref name="path"/> is
    /// (nearly) full. Null for any other error.
    /// </summary>
    public static DiskFullException? Find(Exception e, string path)
    {
        for (var cause = e; ; cause = cause.InnerException)
        {
            if (cause is null)
            {
                return null;
            }

            if (cause is DiskFullException full)
            {
                return full;
            }

            if (cause is IOException { HResult: Enospc or Edquot }
                or SqliteException { SqliteErrorCode: 13 } // SQLITE_FULL
                || (cause is SqliteException { SqliteErrorCode: 10 } && IsFull(path)) // SQLITE_IOERR: a write of the WAL index, say
                || cause.Message.Contains("No space left on device", StringComparison.Ordinal)
                || cause.Message.Contains("Disk quota exceeded", StringComparison.Ordinal))
            {
                return new DiskFullException(path, e);
            }
        }
    }

    /// <summary>Whether the disk that holds <paramref name="path"/> (or its nearest existing parent) has (almost) no space left.</summary>
    public static bool IsFull(string path)
    {
        var existing = System.IO.Path.GetFullPath(path);
        while (!Directory.Exists(existing) && System.IO.Path.GetDirectoryName(existing) is { } parent)
        {
            existing = parent;
        }

        try
        {
            return new DriveInfo(existing).AvailableFreeSpace < NearlyFull;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return false;
        }
    }
}

/// <summary>A write the store could not make for a reason other than a full disk; nothing of it was stored, so it may be tried again.</summary>
public sealed class StoreWriteException(string message, Exception inner) : Exception(message, inner);
