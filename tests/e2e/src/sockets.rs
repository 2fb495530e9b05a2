//! A process's open TCP connections, read from `/proc`: its socket inodes
//! (`/proc/<pid>/fd`) matched against the connection tables (`/proc/<pid>/net/tcp`, `tcp6`).

use std::collections::HashSet;

use anyhow::{Context, Result};

/// `st` of an established connection in the kernel's tables.
const ESTABLISHED: &str = "01";

/// Connections of process `pid` established to `remote_port` (any address).
pub fn established_to(pid: u32, remote_port: u16) -> Result<usize> {
    let inodes = socket_inodes(pid)?;
    let mut count = 0;
    for table in ["tcp", "tcp6"] {
        let path = format!("/proc/{pid}/net/{table}");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        count += count_established(&text, remote_port, &inodes);
    }
    Ok(count)
}

fn socket_inodes(pid: u32) -> Result<HashSet<u64>> {
    let dir = format!("/proc/{pid}/fd");
    let mut inodes = HashSet::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("listing {dir}"))? {
        // A descriptor closed while listing is skipped, not an error.
        let Ok(target) = std::fs::read_link(entry?.path()) else {
            continue;
        };
        if let Some(inode) = target
            .to_str()
            .and_then(|t| t.strip_prefix("socket:["))
            .and_then(|t| t.strip_suffix(']'))
            .and_then(|t| t.parse().ok())
        {
            inodes.insert(inode);
        }
    }
    Ok(inodes)
}

/// Rows of a `/proc/net/tcp` table (header first) that are established connections to
/// `remote_port` owned by one of `inodes`. Columns: sl, local, remote (hex `addr:port`),
/// st, queues, timer, retransmits, uid, timeout, inode.
fn count_established(table: &str, remote_port: u16, inodes: &HashSet<u64>) -> usize {
    table
        .lines()
        .skip(1)
        .filter(|row| {
            let columns: Vec<&str> = row.split_whitespace().collect();
            let port = columns
                .get(2)
                .and_then(|remote| remote.rsplit(':').next())
                .and_then(|hex| u16::from_str_radix(hex, 16).ok());
            let inode = columns.get(9).and_then(|i| i.parse::<u64>().ok());
            port == Some(remote_port)
                && columns.get(3) == Some(&ESTABLISHED)
                && inode.is_some_and(|i| inodes.contains(&i))
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:A1B2 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 1001 1 0000000000000000 20 4 30 10 -1
   1: 0100007F:A1B3 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 1002 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:A1B4 0100007F:1F90 06 00000000:00000000 00:00000000 00000000     0        0 1003 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:A1B5 0100007F:0050 01 00000000:00000000 00:00000000 00000000     0        0 1004 1 0000000000000000 20 4 30 10 -1
   4: 0100007F:A1B6 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 2001 1 0000000000000000 20 4 30 10 -1
";

    #[test]
    fn only_established_connections_of_the_process_to_the_port_count() {
        let ours: HashSet<u64> = [1001, 1002, 1003, 1004].into_iter().collect();
        // 0x1F90 = 8080: rows 0 and 1; row 2 is in TIME_WAIT, row 3 goes to port 80,
        // row 4 belongs to another process.
        assert_eq!(count_established(TABLE, 8080, &ours), 2);
        assert_eq!(count_established(TABLE, 80, &ours), 1);
        assert_eq!(count_established(TABLE, 443, &ours), 0);
    }

    #[test]
    fn this_process_has_a_connection_it_opened() -> Result<()> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let _client = std::net::TcpStream::connect(("127.0.0.1", port))?;
        assert_eq!(established_to(std::process::id(), port)?, 1);
        Ok(())
    }
}
