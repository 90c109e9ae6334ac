using System.Text.Json;
using Offload.Agent.Tools;

namespace Offload.Tests.Tools;

/// <summary>A temp folder holding a worktree, a spill directory, and an "outside" folder the tools must not reach.</summary>
internal sealed class ToolSandbox : IDisposable
{
    public ToolSandbox(int maxOutputChars = 30_000, IReadOnlyDictionary<string, string>? environment = null)
    {
        Root = Directory.CreateTempSubdirectory("offload-tools-").FullName;
        WorkDir = Directory.CreateDirectory(Path.Combine(Root, "work")).FullName;
        Outside = Directory.CreateDirectory(Path.Combine(Root, "outside")).FullName;
        SpillDir = Path.Combine(Root, "spill");
        Context = new ToolContext(WorkDir, SpillDir, maxOutputChars, Environment: environment);
    }

    public string Root { get; }
    public string WorkDir { get; }
    public string Outside { get; }
    public string SpillDir { get; }
    public ToolContext Context { get; }

    public string Work(string relative) => Path.Combine(WorkDir, relative);

    public string WriteFile(string relative, string content)
    {
        var path = Work(relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
        return path;
    }

    public static JsonElement Input(string json) => JsonDocument.Parse(json).RootElement.Clone();

    public static JsonElement Input(IReadOnlyDictionary<string, object?> values) => JsonSerializer.SerializeToElement(values);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
