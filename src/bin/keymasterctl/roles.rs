//! `keymasterctl node …` and `keymasterctl role …`: nodes, and the Key
//! Master role of a zone.

use clap::Subcommand;
use keymaster::proto;

use crate::output::Output;
use crate::{Answer, Clients};

#[derive(Debug, Subcommand)]
pub enum NodeCmd {
    /// Nodes with their token, online/offline and last-seen time.
    List,
}

#[derive(Debug, Subcommand)]
pub enum RoleCmd {
    /// The zone's Key Master, its status, epoch and since when.
    Show {
        /// The zone's name, e.g. example.com.
        zone: String,
    },
    /// Nodes that could become Key Master, and why the others cannot.
    Candidates {
        /// The zone's name, e.g. example.com.
        zone: String,
    },
    /// Move the role while the Key Master is online.
    Transfer {
        /// The zone's name, e.g. example.com.
        zone: String,
        /// The node id to make Key Master (see `role candidates`).
        #[arg(long)]
        to: String,
    },
    /// Take the role when the Key Master is gone for good.
    Seize {
        /// The zone's name, e.g. example.com.
        zone: String,
        /// The node id to make Key Master (see `role candidates`).
        #[arg(long)]
        to: String,
        /// Take it even if the new holder cannot reach the keys (the zone
        /// must then be re-keyed and its trust anchors replaced).
        #[arg(long)]
        force: bool,
    },
}

pub async fn run_node(c: &mut Clients, cmd: NodeCmd) -> Result<Output, String> {
    match cmd {
        NodeCmd::List => Ok(Output::Nodes(
            c.roles
                .list_nodes(proto::ListNodesRequest {})
                .await
                .answer()?
                .nodes,
        )),
    }
}

pub async fn run(c: &mut Clients, cmd: RoleCmd) -> Result<Output, String> {
    let roles = &mut c.roles;
    Ok(match cmd {
        RoleCmd::Show { zone } => Output::Role(
            roles
                .show_role(proto::RoleRequest { zone })
                .await
                .answer()?,
        ),
        RoleCmd::Candidates { zone } => Output::Candidates(
            roles
                .candidates(proto::RoleRequest { zone })
                .await
                .answer()?
                .candidates,
        ),
        RoleCmd::Transfer { zone, to } => Output::Role(
            roles
                .transfer(proto::MoveRoleRequest {
                    zone,
                    to,
                    force: false,
                })
                .await
                .answer()?,
        ),
        RoleCmd::Seize { zone, to, force } => {
            let r = roles
                .seize(proto::MoveRoleRequest { zone, to, force })
                .await
                .answer()?;
            if r.needs_rekey {
                eprintln!(
                    "warning: {} cannot reach the old keys; the zone needs new keys, and every \
                     trust anchor (the DS at the parent, configured anchors) must be replaced",
                    r.key_master
                );
            }
            Output::Role(r)
        }
    })
}
