namespace Offload.Bench;

/// <summary>
/// The figures' temp folders, deleted when the whole run is over rather than after each figure or round. On a file
/// system without a journal (this VM's ext4), deleting thousands of files makes creating files slow for the next 30 s
/// (the kernel skips recently freed inodes one by one: <c>recently_deleted</c> in <c>find_inode_bit</c>), so a round
/// that followed the previous round's clean-up measured that clean-up: 100 tasks took 2.9–3.5 s instead of 2.2–2.3 s.
/// With <c>OFFLOAD_BENCH_KEEP=1</c> nothing is deleted.
/// </summary>
public static class Leftovers
{
    private static readonly List<string> Folders = [];

    public static void Add(string folder)
    {
        if (Environment.GetEnvironmentVariable("OFFLOAD_BENCH_KEEP") == "1")
        {
            Console.Error.WriteLine($"offload-bench: kept {folder} (OFFLOAD_BENCH_KEEP=1)");
            return;
        }

        lock (Folders)
        {
            Folders.Add(folder);
        }
    }

    public static void DeleteAll()
    {
        lock (Folders)
        {
            foreach (var folder in Folders)
            {
                try
                {
                    Directory.Delete(folder, recursive: true);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // a temp folder left behind is not worth failing the run over
                }
            }

            Folders.Clear();
        }
    }
}
