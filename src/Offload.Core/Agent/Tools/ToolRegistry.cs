using System.Collections;
using System.Diagnostics.CodeAnalysis;

namespace Offload.Agent.Tools;

/// <summary>The builtin agent's tools by name, the name being what the model calls.</summary>
public sealed class ToolRegistry : IReadOnlyDictionary<string, ITool>
{
    private readonly Dictionary<string, ITool> tools;

    public ToolRegistry(IEnumerable<ITool> tools)
    {
        this.tools = new Dictionary<string, ITool>(StringComparer.Ordinal);
        foreach (var tool in tools)
        {
            if (!this.tools.TryAdd(tool.Name, tool))
            {
                throw new ArgumentException($"Two tools are named {tool.Name}.", nameof(tools));
            }
        }
    }

    /// <summary>Read, Write, Edit, Bash, Glob and Grep; the plan tools TaskCreate, TaskUpdate, TaskList, TaskGet and ExitPlanMode.</summary>
    public static ToolRegistry CreateDefault() =>
        new([new ReadTool(), new WriteTool(), new EditTool(), new BashTool(), new GlobTool(), new GrepTool(),
            new TaskCreateTool(), new TaskUpdateTool(), new TaskListTool(), new TaskGetTool(), new ExitPlanModeTool()]);

    public ITool this[string key] => tools[key];

    public IEnumerable<string> Keys => tools.Keys;

    public IEnumerable<ITool> Values => tools.Values;

    public int Count => tools.Count;

    public bool ContainsKey(string key) => tools.ContainsKey(key);

    public bool TryGetValue(string key, [MaybeNullWhen(false)] out ITool value) => tools.TryGetValue(key, out value);

    public IEnumerator<KeyValuePair<string, ITool>> GetEnumerator() => tools.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
