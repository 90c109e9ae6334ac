using System.Text.RegularExpressions;
using Offload.Cli;

namespace Offload.Tests.Resilience;

/// <summary>The exit codes the bad-input tests rely on are documented, the same way in <c>offload help exit-codes</c> and the README.</summary>
public sealed partial class ExitCodeTableTests
{
    [Fact]
    public void TheReadmeAndHelpTable_ListTheSameCodes_IncludingEveryCodeForBadInput()
    {
        var readme = File.ReadAllText(Path.Combine(RepositoryRoot(), "README.md"));
        var section = readme[readme.IndexOf("### Exit codes", StringComparison.Ordinal)..];
        var documented = ReadmeRow().Matches(section).Select(m => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        var help = TableRow().Matches(ExitCodes.Table).Select(m => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).ToList();

        Assert.Equal(help, documented);
        Assert.Subset(help.ToHashSet(), new HashSet<int>
        {
            ExitCodes.BadInput, ExitCodes.NotFound, ExitCodes.Conflict, ExitCodes.Daemon, ExitCodes.Repository, ExitCodes.NoModel,
            ExitCodes.TaskFailed, ExitCodes.TaskLimited, ExitCodes.TaskCancelled,
        });
    }

    /// <summary>Found from this source file's path (the build output may live anywhere).</summary>
    private static string RepositoryRoot([System.Runtime.CompilerServices.CallerFilePath] string source = "")
    {
        var dir = new DirectoryInfo(Path.GetDirectoryName(source)!);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "README.md")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("README.md not found above " + source);
    }

    [GeneratedRegex(@"^\| (\d+) \|", RegexOptions.Multiline)]
    private static partial Regex ReadmeRow();

    [GeneratedRegex(@"^\s*(\d+)\s{2,}", RegexOptions.Multiline)]
    private static partial Regex TableRow();
}
