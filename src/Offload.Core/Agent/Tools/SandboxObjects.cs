using System.IO.Compression;
using System.Security.Cryptography;
using Offload.Workspace;

namespace Offload.Agent.Tools;

/// <summary>
/// The object store quarantine. Inside the sandbox the repository's objects are read-only and git
/// writes new ones to a folder of the task's own (<c>GIT_OBJECT_DIRECTORY</c>, the repository's
/// store as an alternate), so a command cannot delete or corrupt the repository's history. After
/// each command the daemon adopts what git wrote: a loose object only when its content hashes to
/// its name, a pack only when <c>git index-pack --strict</c> accepts it.
/// </summary>
public static class SandboxObjects
{
    private const string PrivateFolder = "offload-objects";

    /// <summary>The task's private object folder inside its worktree's git dir.</summary>
    public static string PrivateDir(string worktreeGitDir) => Path.Combine(worktreeGitDir, PrivateFolder);

    /// <summary>Moves what commands wrote into the repository's object store; anything that fails its check is dropped.</summary>
    public static async Task AdoptAsync(SandboxPolicy policy, CancellationToken cancellationToken = default)
    {
        if (policy.GitCommonDir is not { } common || policy.PrivateObjectDir is not { } source || !Directory.Exists(source))
        {
            return;
        }

        var target = Path.Combine(common, "objects");
        foreach (var fanout in Directory.EnumerateDirectories(source, "??"))
        {
            foreach (var file in Directory.EnumerateFiles(fanout))
            {
                var name = Path.GetFileName(fanout) + Path.GetFileName(file);
                var destination = Path.Combine(target, Path.GetFileName(fanout), Path.GetFileName(file));
                if (!File.Exists(destination) && HashOf(file, policy.ObjectFormat) == name)
                {
                    Directory.CreateDirectory(Path.GetDirectoryName(destination)!);
                    var temporary = destination + ".offload-tmp";
                    File.Copy(file, temporary, overwrite: true);
                    File.Move(temporary, destination, overwrite: false);
                }

                File.Delete(file);
            }

            Directory.Delete(fanout, recursive: true);
        }

        var packs = Path.Combine(source, "pack");
        if (Directory.Exists(packs))
        {
            foreach (var pack in Directory.EnumerateFiles(packs, "*.pack"))
            {
                await AdoptPackAsync(common, pack, Path.Combine(target, "pack"), cancellationToken);
            }

            Directory.Delete(packs, recursive: true);
        }

        foreach (var rest in Directory.EnumerateFileSystemEntries(source))
        {
            if (Directory.Exists(rest))
            {
                Directory.Delete(rest, recursive: true); // info/ and whatever else: nothing there is adopted
            }
            else
            {
                File.Delete(rest);
            }
        }
    }

    private static async Task AdoptPackAsync(string commonDir, string pack, string targetDir, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(targetDir);
        var staged = Path.Combine(targetDir, $"tmp-offload-{Guid.NewGuid():N}.pack");
        File.Copy(pack, staged);
        // In the repository's own git dir, named explicitly: nothing the worktree holds (its .git, its config) takes part.
        var indexed = await Git.RunAsync(
            commonDir, ["index-pack", "--strict", staged], new Dictionary<string, string> { ["GIT_DIR"] = commonDir }, cancellationToken: cancellationToken);
        var hash = indexed.Stdout.Trim().Split('\t', ' ').LastOrDefault() ?? "";
        var stagedIndex = Path.ChangeExtension(staged, ".idx");
        if (indexed.Ok && hash.Length >= 40 && hash.All(char.IsAsciiHexDigitLower) && !File.Exists(Path.Combine(targetDir, $"pack-{hash}.pack")))
        {
            File.Move(stagedIndex, Path.Combine(targetDir, $"pack-{hash}.idx"));
            File.Move(staged, Path.Combine(targetDir, $"pack-{hash}.pack"));
            return;
        }

        File.Delete(staged);
        File.Delete(stagedIndex);
    }

    /// <summary>The object id of a loose object file: the hash of its inflated bytes (header included).</summary>
    private static string? HashOf(string file, string objectFormat)
    {
        try
        {
            using var input = File.OpenRead(file);
            using var inflated = new ZLibStream(input, CompressionMode.Decompress);
            using var hash = IncrementalHash.CreateHash(objectFormat == "sha256" ? HashAlgorithmName.SHA256 : HashAlgorithmName.SHA1);
            var buffer = new byte[1 << 16];
            int read;
            while ((read = inflated.Read(buffer)) > 0)
            {
                hash.AppendData(buffer.AsSpan(0, read));
            }

            return Convert.ToHexStringLower(hash.GetHashAndReset());
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
