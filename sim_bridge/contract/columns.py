"""One shared set of column names for logs, sessions, features and recommendations."""

# botify event (one JSON object per request), docs/formats.md
MESSAGE = "message"
TIMESTAMP = "timestamp"
USER = "user"
TRACK = "track"
TIME = "time"
LATENCY = "latency"
RECOMMENDATION = "recommendation"
EXPERIMENTS = "experiments"
EVENT_COLUMNS = (MESSAGE, TIMESTAMP, USER, TRACK, TIME, LATENCY, RECOMMENDATION, EXPERIMENTS)

MESSAGE_NEXT = "next"
MESSAGE_LAST = "last"

# flat experiment column used inside Parquet logs and session tables: the arm ("C", "T1", ...)
ARM = "arm"

# per-session table (simulator output and sessionized logs)
SESSION = "session"
TRACKS = "tracks"
TRUNCATED = "truncated"

# user-level metrics (course A/B), docs/ab_test.md
SESSIONS = "sessions"
MEAN_TIME_PER_SESSION = "mean_time_per_session"
MEAN_TRACKS_PER_SESSION = "mean_tracks_per_session"
MEAN_REQUEST_LATENCY = "mean_request_latency"

# public catalog (tracks.json, the course's schema: docs/formats.md)
ARTIST = "artist"
ALBUM = "album"
TITLE = "title"
GENRE = "genre"  # a tuple of integer genre ids per track
POP = "pop"  # the course's standardised popularity (a play count in worlds written before)
DURATION = "duration"  # seconds
CATALOG_COLUMNS = (TRACK, ARTIST, ALBUM, TITLE, GENRE, POP, DURATION)

# recommendation files (botify JSON lines)
REC_TRACKS = "tracks"  # {"user": id, "tracks": [...]}
ITEM_ID = "item_id"  # {"item_id": t, "recommendations": [...]}
ITEM_RECOMMENDATIONS = "recommendations"
