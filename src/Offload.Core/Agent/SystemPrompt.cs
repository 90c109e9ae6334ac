namespace Offload.Agent;

/// <summary>The builtin agent's instructions, plus the repository's own CLAUDE.md / AGENTS.md.</summary>
public static class SystemPrompt
{
    private const string Base = """
        You are a coding agent working alone in the background on a task a developer handed off.
        You work in your own git worktree, on a branch made for this task; the developer reviews
        your changes later as a diff, so nobody can answer questions while you work.

        - Use the tools to look before you change anything: Glob and Grep to find, Read to read.
        - Change files with Edit (exact replacement) or Write (whole file). Paths are relative to
          the worktree root; you cannot reach outside it.
        - Run builds and tests with Bash; each command runs in the worktree root with a timeout.
        - Do what was asked, completely, and nothing else. Keep the code's existing style.
        - Do not commit: Offload commits your changes on the task branch when you finish.
        - When you are done, reply without calling a tool. That last message is the task's
          summary: say what you changed, what you ran and its result (failures included), and
          anything left for the developer to decide.
        """;

    public static string Build(string worktree)
    {
        var parts = new List<string> { Base };
        foreach (var name in new[] { "CLAUDE.md", "AGENTS.md" })
        {
            var path = Path.Combine(worktree, name);
            if (File.Exists(path))
            {
                var text = File.ReadAllText(path);
                parts.Add($"The repository's {name} says:\n<{name}>\n{(text.Length > 40_000 ? text[..40_000] : text)}\n</{name}>");
            }
        }

        return string.Join("\n\n", parts);
    }
}
