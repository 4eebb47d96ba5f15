"""The versioned database schema. Append new migrations at the end; never edit an applied one.

sqlite-utils' Migrations records each applied step in `_sqlite_migrations` and runs each step in a
transaction with its record, so an interrupted upgrade leaves the previous version intact.
"""
from __future__ import annotations

from sqlite_utils.migrations import Migrations

from corpus.nearcopy import edit_distance
from corpus.store.shingles import reindex_all

MIGRATIONS = Migrations("buhurt")


# The first schema, as m001_initial has always run it (text kept byte for byte: applied databases
# record the migration by name, and a fresh one must get the same tables).
_INITIAL_SCHEMA = """
        CREATE TABLE posts (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL,                 -- 'file', 'vk', 'telegram'
            community TEXT NOT NULL DEFAULT '',   -- VK group / Telegram channel / file name
            external_id TEXT NOT NULL,            -- post id at the source (file: text hash)
            date TEXT,                            -- ISO 8601, UTC
            text TEXT NOT NULL,                   -- as received (line breaks normalised)
            text_hash TEXT NOT NULL,              -- sha256 of the normalised text
            clean_text TEXT,                      -- after corpus cleaning; NULL = not cleaned yet
            excluded_reason TEXT,                 -- why cleaning or the stop-list excluded it
            likes INTEGER, reposts INTEGER, views INTEGER, comments INTEGER,
            reactions INTEGER,                    -- total reactions (Telegram exports)
            reactions_json TEXT,                  -- {"emoji": count} where known
            is_ad INTEGER NOT NULL DEFAULT 0,
            is_pinned INTEGER NOT NULL DEFAULT 0,
            is_repost INTEGER NOT NULL DEFAULT 0,
            has_attachments INTEGER NOT NULL DEFAULT 0,
            imported_at TEXT NOT NULL,
            updated_at TEXT,
            UNIQUE (source, community, external_id)
        );
        CREATE INDEX posts_text_hash ON posts (text_hash);
        CREATE INDEX posts_community_date ON posts (community, date);

        CREATE TABLE model_versions (
            version TEXT PRIMARY KEY,             -- short sha256 of the checkpoint file
            path TEXT NOT NULL,
            status TEXT NOT NULL,                 -- 'candidate', 'active', 'retired', 'rejected'
            val_loss REAL,
            metrics_json TEXT,
            created_at TEXT NOT NULL,
            promoted_at TEXT
        );

        CREATE TABLE drafts (
            id INTEGER PRIMARY KEY,               -- the meme's permanent number (/meme N)
            text TEXT NOT NULL,
            model_version TEXT NOT NULL,
            temperature REAL NOT NULL,
            seed INTEGER NOT NULL,
            start_text TEXT NOT NULL DEFAULT '',
            top_k INTEGER NOT NULL DEFAULT 0,
            max_length INTEGER NOT NULL,
            purpose TEXT NOT NULL DEFAULT 'channel',  -- 'channel' (moderated), 'subscriber' (/generate pool), 'request' (/generate TEXT)
            status TEXT NOT NULL,                 -- see docs/architecture.md, draft state machine
            status_reason TEXT,
            final_text TEXT,                      -- what is published (a moderator's edit, else text)
            moderation_chat_id TEXT,
            moderation_message_id TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX drafts_status ON drafts (status, id);

        CREATE TABLE moderation_actions (
            id INTEGER PRIMARY KEY,
            draft_id INTEGER NOT NULL REFERENCES drafts (id),
            action TEXT NOT NULL,                 -- approve, reject, regenerate, edit, auto_approve, auto_reject
            actor_id TEXT,                        -- Telegram user id; NULL for the system
            actor_name TEXT,
            detail TEXT,
            at TEXT NOT NULL
        );
        CREATE INDEX moderation_actions_draft ON moderation_actions (draft_id);

        CREATE TABLE publications (
            id INTEGER PRIMARY KEY,
            draft_id INTEGER NOT NULL REFERENCES drafts (id),
            network TEXT NOT NULL,                -- 'telegram', 'vk', 'local'
            chat_id TEXT NOT NULL,
            status TEXT NOT NULL,                 -- 'sending', 'sent', 'failed', 'unknown'
            message_id TEXT,
            error TEXT,
            created_at TEXT NOT NULL,
            published_at TEXT,
            UNIQUE (draft_id, network, chat_id)
        );
        CREATE INDEX publications_message ON publications (network, chat_id, message_id);

        CREATE TABLE reactions (
            id INTEGER PRIMARY KEY,
            publication_id INTEGER REFERENCES publications (id),  -- NULL: message not ours/unknown
            network TEXT NOT NULL,
            chat_id TEXT NOT NULL,
            message_id TEXT NOT NULL,
            kind TEXT NOT NULL,                   -- an emoji, 'custom:<id>', 'paid', 'like', 'repost', 'view'
            count INTEGER NOT NULL,
            observed_at TEXT NOT NULL
        );
        CREATE INDEX reactions_publication ON reactions (publication_id, kind, observed_at);
        """


@MIGRATIONS()
def m001_initial(db) -> None:
    """Posts (the corpus), drafts, publications, reactions, moderation actions, model versions."""
    db.executescript(_INITIAL_SCHEMA)


@MIGRATIONS()
def m002_state(db) -> None:
    """A small key-value table for job state: scrape cursors, the last reminder, the last cycle."""
    db.executescript(
        """
        CREATE TABLE state (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        """
    )


@MIGRATIONS()
def m003_draft_measures_and_near_copy_index(db) -> None:
    """Each draft's measures (jobs/pool.py: known-word share, reached the post gap, longest run
    shared with a corpus post, lines, mean log-probability per character, decoding mode, score;
    NULL for drafts made before), and the near-copy index over the corpus (corpus/nearcopy.py),
    built here from the posts already stored."""
    for column, kind in (("known_share", "REAL"), ("reached_gap", "INTEGER"), ("shared_chars", "INTEGER"),
                         ("line_count", "INTEGER"), ("logprob_per_char", "REAL"), ("words", "TEXT"),
                         ("score", "REAL")):
        db.execute(f"ALTER TABLE drafts ADD COLUMN {column} {kind}")
    db.executescript(
        """
        CREATE TABLE post_shingles (
            hash INTEGER NOT NULL,                -- corpus.nearcopy.shingle_hash of a substring
            post_id INTEGER NOT NULL REFERENCES posts (id),
            pos INTEGER NOT NULL,                 -- where the substring starts in the post's text
            PRIMARY KEY (hash, post_id, pos)
        ) WITHOUT ROWID;
        CREATE INDEX post_shingles_post ON post_shingles (post_id);
        """
    )
    reindex_all(db)


@MIGRATIONS()
def m004_decoding_and_grammar(db) -> None:
    """drafts.words held the draft's decoding's stored name (model.sample_options.Decoding.name), not
    words: renamed `decoding`; and each draft's grammar measure (the share of its lines whose words
    break no agreement rule, model.grammar; NULL for drafts made before or without the dictionary)."""
    db.execute("ALTER TABLE drafts RENAME COLUMN words TO decoding")
    db.execute("ALTER TABLE drafts ADD COLUMN grammar REAL")


@MIGRATIONS()
def m005_desk(db) -> None:
    """The moderators' desk: each moderator's vote on a draft (a quorum decides, `moderation.votes`),
    and an approved draft's place in the queue (`queue_order`, NULL: its id) and the time before
    which it is not published (`not_before`, ISO 8601 UTC; NULL: at its slot)."""
    db.execute("ALTER TABLE drafts ADD COLUMN queue_order REAL")
    db.execute("ALTER TABLE drafts ADD COLUMN not_before TEXT")
    db.executescript(
        """
        CREATE TABLE moderation_votes (
            draft_id INTEGER NOT NULL REFERENCES drafts (id),
            actor_id TEXT NOT NULL,               -- Telegram user id
            actor_name TEXT,
            vote TEXT NOT NULL,                   -- 'approve', 'reject', 'regenerate'
            reason TEXT,                          -- a rejection's reason (a canned one or /reject TEXT)
            at TEXT NOT NULL,
            PRIMARY KEY (draft_id, actor_id)
        );
        """
    )


@MIGRATIONS()
def m006_post_origin(db) -> None:
    """posts.origin: the channel a Telegram post was published in, whatever `--community` labelled
    it, so that re-importing an export under another label finds the same posts (the same message
    id from the same channel is the same post). NULL where unknown: rows imported before, text
    files, VK (those keep the (source, community, external_id) identity)."""
    db.execute("ALTER TABLE posts ADD COLUMN origin TEXT")
    db.execute("CREATE INDEX posts_origin ON posts (source, origin, external_id)")


@MIGRATIONS()
def m007_curation(db) -> None:
    """The community's curation (issue 24): blind ratings of real posts and drafts (`ratings`), what
    each subscriber got from /generate (`served`), a moderator's edit distance and the learned
    ranker's score per draft. Existing drafts keep every column; edited ones get their distance."""
    db.executescript(
        """
        CREATE TABLE ratings (
            id INTEGER PRIMARY KEY,
            rater_id TEXT NOT NULL,               -- Telegram user id
            source TEXT NOT NULL,                 -- 'corpus' (a held-out real post) or 'draft'
            item_id INTEGER NOT NULL,             -- posts.id or drafts.id
            model_version TEXT,                   -- the draft's model; NULL for a corpus post
            chat_id TEXT,
            message_id TEXT,
            readable INTEGER,                     -- 1 "reads from start to end", 0 no; NULL: not answered yet
            would_publish INTEGER,                -- 1 "would publish", 0 no; NULL: not answered yet
            shown_at TEXT NOT NULL,
            rated_at TEXT,
            UNIQUE (rater_id, source, item_id)
        );
        CREATE INDEX ratings_version ON ratings (source, model_version);

        CREATE TABLE served (
            user_id TEXT NOT NULL,                -- a subscriber's Telegram user id
            draft_id INTEGER NOT NULL REFERENCES drafts (id),
            text_hash TEXT NOT NULL,              -- corpus.store.posts.text_hash of what was sent
            at TEXT NOT NULL,
            PRIMARY KEY (user_id, draft_id)
        );
        CREATE INDEX served_user_text ON served (user_id, text_hash);
        """
    )
    db.execute("ALTER TABLE drafts ADD COLUMN edit_distance INTEGER")   # a moderator's edit: characters changed
    db.execute("ALTER TABLE drafts ADD COLUMN ranker_score REAL")       # jobs/ranker.py, when it ranked the draft
    edited = db.execute("SELECT id, text, final_text FROM drafts WHERE final_text IS NOT NULL").fetchall()
    db.conn.executemany("UPDATE drafts SET edit_distance = ? WHERE id = ?",
                        [(edit_distance(text, final), draft_id) for draft_id, text, final in edited])


@MIGRATIONS()
def m008_val_bpc(db) -> None:
    """model_versions.val_loss held the held-out bits per character (retrain's and `models install`'s
    evaluation), while checkpoints' `best_val_loss` is in nats per character: renamed `val_bpc`."""
    db.execute("ALTER TABLE model_versions RENAME COLUMN val_loss TO val_bpc")


@MIGRATIONS()
def m009_clean_text_index(db) -> None:
    """An index on posts.clean_text: the screen refuses a draft equal to a corpus post's clean text
    (what the model learned), not only to its text as imported (corpus.store.posts.has_text)."""
    db.execute("CREATE INDEX posts_clean_text ON posts (clean_text)")
