using System.Collections.Concurrent;
using System.Security.Cryptography;
using Offload.Protocol;

namespace Offload.Agent.Tools;

/// <summary>
/// Claude Code's rule for Write and Edit: an existing file must have been Read in this task, and must not have changed
/// since (by a Bash command, the user, a formatter), else the model would overwrite what it never saw. A file counts
/// as read from a Read's result, and as seen again from a successful Write's or Edit's. Made from the journal's
/// <see cref="ToolResulted.File"/> stamps, so a restarted daemon knows what the agent had read.
/// </summary>
public sealed class FileReads
{
    /// <summary>Claude Code's words (2.1.197), which Claude models know.</summary>
    public const string NotReadYet = "File has not been read yet. Read it first before writing to it.";

    public const string ModifiedSinceRead =
        "File has been modified since read, either by the user or by a linter. Read it again before attempting to write it.";

    private const long MaxHashedBytes = 64L * 1024 * 1024;

    private readonly ConcurrentDictionary<string, FileStamp> _seen = new(StringComparer.Ordinal);

    /// <summary>The stamps of the conversation as it stands (<see cref="Conversation.Current"/>), the latest per file.</summary>
    public static FileReads From(IEnumerable<AgentEvent> current)
    {
        var reads = new FileReads();
        foreach (var result in current.OfType<ToolResulted>())
        {
            if (result is { IsError: false, File: { } stamp })
            {
                reads.Record(stamp);
            }
        }

        return reads;
    }

    public void Record(FileStamp stamp) => _seen[stamp.Path] = stamp;

    /// <summary>Throws the error the model gets when the existing file at <paramref name="real"/> may not be written yet.</summary>
    /// <exception cref="ToolException">It was not read in this task, or its content changed since.</exception>
    public void CheckWritable(string real, string display)
    {
        if (!_seen.TryGetValue(display, out var seen))
        {
            throw new ToolException(NotReadYet);
        }

        var info = new FileInfo(real);
        if (info.Length == seen.Size && info.LastWriteTimeUtc.Ticks == seen.ModifiedAt.UtcTicks)
        {
            return;
        }

        // Touched but the same bytes (a checkout, a formatter that changed nothing) is still what the model saw.
        if (seen.Sha256 is null || info.Length != seen.Size || Stamp(real, display).Sha256 != seen.Sha256)
        {
            throw new ToolException(ModifiedSinceRead);
        }
    }

    /// <summary>The file at <paramref name="real"/> as it is now, named <paramref name="display"/> (relative to the worktree).</summary>
    public static FileStamp Stamp(string real, string display)
    {
        var info = new FileInfo(real);
        string? hash = null;
        if (info.Length <= MaxHashedBytes)
        {
            using var stream = new FileStream(real, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            hash = Convert.ToHexStringLower(SHA256.HashData(stream));
        }

        return new FileStamp(display, info.Length, new DateTimeOffset(info.LastWriteTimeUtc), hash);
    }
}
