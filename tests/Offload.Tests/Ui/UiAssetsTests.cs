using System.Text;
using System.Text.RegularExpressions;
using Offload.Daemon.Ui;

namespace Offload.Tests.Ui;

/// <summary>The page's files as compiled into the daemon: every file a page or module names is there, so nothing 404s offline.</summary>
public sealed partial class UiAssetsTests
{
    [Fact]
    public void EveryFileThePageAndItsModulesName_IsCompiledIntoTheDaemon()
    {
        var names = UiAssets.Names.ToHashSet(StringComparer.Ordinal);
        Assert.Contains("index.html", names);
        Assert.Contains("vendor/highlight.min.js", names);
        Assert.Contains("vendor/highlight.LICENSE.txt", names);

        var named = new List<string>();
        var assembly = typeof(UiAssets).Assembly;
        foreach (var name in names.Where(n => n.EndsWith(".html", StringComparison.Ordinal) || n.EndsWith(".js", StringComparison.Ordinal)))
        {
            using var stream = assembly.GetManifestResourceStream("ui/" + name)!;
            var text = new StreamReader(stream, Encoding.UTF8).ReadToEnd();
            named.AddRange(AssetReference().Matches(text).Select(m => m.Groups[1].Value));
            if (!name.StartsWith("vendor/", StringComparison.Ordinal))
            {
                var folder = Path.GetDirectoryName(name) is { Length: > 0 } d ? d + "/" : "";
                named.AddRange(ModuleImport().Matches(text).Select(m => folder + m.Groups[1].Value));
            }
        }

        Assert.True(named.Count >= 10, string.Join(", ", named));
        Assert.All(named, n => Assert.Contains(n, names));
    }

    /// <summary>A syntax error in one module stops the whole page (it stays at "Loading…"): node checks each one.</summary>
    [Fact]
    public async Task EveryModule_Parses()
    {
        var assembly = typeof(UiAssets).Assembly;
        var dir = Directory.CreateTempSubdirectory("offload-ui-js-").FullName;
        try
        {
            foreach (var name in UiAssets.Names.Where(n => n.EndsWith(".js", StringComparison.Ordinal)))
            {
                var path = Path.Combine(dir, name.Replace('/', '_') + ".mjs");
                using (var stream = assembly.GetManifestResourceStream("ui/" + name)!)
                using (var file = File.Create(path))
                {
                    stream.CopyTo(file);
                }

                var info = new System.Diagnostics.ProcessStartInfo("node", ["--check", path]) { RedirectStandardError = true, RedirectStandardOutput = true };
                using var node = System.Diagnostics.Process.Start(info)
                    ?? throw new InvalidOperationException("node did not start: install Node.js (.ci/run does) to check the dashboard's modules");
                var errors = await node.StandardError.ReadToEndAsync();
                await node.WaitForExitAsync();
                Assert.True(node.ExitCode == 0, $"{name}: {errors}");
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [GeneratedRegex("\"/assets/([^\"?#]+)\"")]
    private static partial Regex AssetReference();

    [GeneratedRegex("(?:from |import\\()\"\\./([^\"]+)\"")]
    private static partial Regex ModuleImport();
}
