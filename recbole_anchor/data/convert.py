"""Convert the raw public files of MovieLens, Netflix Prize and the Million Song
Dataset to RecBole atomic files, streaming (bounded memory) with a progress bar.

Usage::

    python -m recbole_anchor.data.convert movielens ml-20m/ratings.csv --output DIR --name ml-20m
    python -m recbole_anchor.data.convert movielens ml-1m/ratings.dat --output DIR --name ml-1m
    python -m recbole_anchor.data.convert netflix training_set/ --output DIR
    python -m recbole_anchor.data.convert netflix combined_data_1.txt combined_data_2.txt ... --output DIR
    python -m recbole_anchor.data.convert msd train_triplets.txt --output DIR

writes ``DIR/<name>/<name>.inter``, so ``--data_path=DIR --dataset=<name>`` reads it.
A malformed line stops the conversion with ``file:line: what is wrong`` (exit 2).

``msd`` also applies Liang et al.'s (WWW 2018) filter, once and in this order: songs
listened to by >= 200 users, then users with >= 20 of those songs. RecBole repeats
its ``item_inter_num_interval`` / ``user_inter_num_interval`` filters until nothing
changes, which gives other counts, so the ``msd`` preset leaves them off.

Formats read:

- MovieLens ``ratings.csv`` (ML-20M/25M/32M): header ``userId,movieId,rating,timestamp``;
  ``ratings.dat`` (ML-1M/10M): ``UserID::MovieID::Rating::Timestamp``.
- Netflix Prize: ``training_set/mv_*.txt`` or ``combined_data_*.txt``: a ``MovieID:``
  line, then ``CustomerID,Rating,YYYY-MM-DD`` lines for that movie.
- MSD (Echo Nest taste profile) ``train_triplets.txt``: ``user<TAB>song<TAB>play count``.
"""
import argparse
import calendar
import collections
import datetime
import glob
import os
import sys

from tqdm import tqdm

from recbole_anchor.errors import MalformedDatasetError, RecBoleAnchorError

MOVIELENS_HEADER = "user_id:token\titem_id:token\trating:float\ttimestamp:float"
NETFLIX_HEADER = MOVIELENS_HEADER
MSD_HEADER = "user_id:token\titem_id:token\tcount:float"


def _number(text, path, lineno, what):
    try:
        float(text)
    except ValueError:
        raise MalformedDatasetError(
            f"{path}:{lineno}: {what} {text!r} is not a number; fix or remove the line"
        ) from None
    return text


def _lines(paths, progress):
    """``(path, line number, text)`` of every line of ``paths``, read as a stream;
    the progress bar advances by bytes read."""
    with tqdm(
        total=sum(os.path.getsize(p) for p in paths),
        unit="B",
        unit_scale=True,
        desc="converting",
        disable=not progress,
    ) as bar:
        for path in paths:
            with open(path, "rb") as handle:
                for lineno, raw in enumerate(handle, 1):
                    bar.update(len(raw))
                    try:
                        text = raw.decode("utf-8").rstrip("\r\n")
                    except UnicodeDecodeError:
                        raise MalformedDatasetError(
                            f"{path}:{lineno}: not valid UTF-8; is this the right file?"
                        ) from None
                    if text.strip():
                        yield path, lineno, text


def movielens_rows(paths, progress=True):
    """``(user, item, rating, timestamp)`` rows of MovieLens ``ratings.csv``/``.dat``."""
    for path, lineno, text in _lines(paths, progress):
        dat = path.endswith(".dat")
        if not dat and lineno == 1 and text.startswith("userId"):
            continue  # the csv header
        fields = text.split("::") if dat else text.split(",")
        if len(fields) != 4:
            layout = "UserID::MovieID::Rating::Timestamp" if dat else "userId,movieId,rating,timestamp"
            raise MalformedDatasetError(
                f"{path}:{lineno}: expected 4 fields {layout}, found {len(fields)}"
            )
        user, item, rating, timestamp = fields
        yield (user, item, _number(rating, path, lineno, "rating"),
               _number(timestamp, path, lineno, "timestamp"))


def netflix_rows(paths, progress=True):
    """``(user, movie, rating, timestamp)`` rows of Netflix Prize files."""
    seconds = {}  # date -> Unix time; a few thousand distinct dates
    movie, movie_path = None, None  # each file starts with its first 'MovieID:' line
    for path, lineno, text in _lines(paths, progress):
        if text.endswith(":"):
            movie, movie_path = text[:-1], path
            if not movie.isdigit():
                raise MalformedDatasetError(f"{path}:{lineno}: movie line {text!r} is not 'MovieID:'")
            continue
        if movie_path != path:
            raise MalformedDatasetError(
                f"{path}:{lineno}: rating before any 'MovieID:' line; each movie's "
                "ratings must follow its 'MovieID:' line"
            )
        fields = text.split(",")
        if len(fields) != 3:
            raise MalformedDatasetError(
                f"{path}:{lineno}: expected 3 fields CustomerID,Rating,YYYY-MM-DD, found {len(fields)}"
            )
        user, rating, date = fields
        if date not in seconds:
            try:
                day = datetime.date.fromisoformat(date)
            except ValueError:
                raise MalformedDatasetError(
                    f"{path}:{lineno}: date {date!r} is not YYYY-MM-DD"
                ) from None
            seconds[date] = str(calendar.timegm(day.timetuple()))
        yield user, movie, _number(rating, path, lineno, "rating"), seconds[date]


def msd_rows(paths, progress=True):
    """``(user, song, play count)`` rows of the taste profile triplets."""
    for path, lineno, text in _lines(paths, progress):
        fields = text.split("\t")
        if len(fields) != 3:
            raise MalformedDatasetError(
                f"{path}:{lineno}: expected 3 tab-separated fields user, song, play count; "
                f"found {len(fields)}"
            )
        user, song, count = fields
        yield user, song, _number(count, path, lineno, "play count")


#: Liang et al.'s MSD filter: songs with >= this many users, then users with >= this
#: many of those songs.
MSD_MIN_SONG_USERS, MSD_MIN_USER_SONGS = 200, 20


def filter_once(read, min_item_users, min_user_items):
    """The ``(user, item, ...)`` rows of ``read()`` whose item has >= ``min_item_users``
    rows, then of those the rows whose user has >= ``min_user_items`` of them: each
    filter once (Liang et al.'s ``filter_triplets``), not until stable as RecBole does.
    ``read`` gives a fresh stream of the rows on each call; the data is read three times
    and only the counts are held in memory."""
    item_rows = collections.Counter(row[1] for row in read())
    items = {item for item, n in item_rows.items() if n >= min_item_users}
    user_rows = collections.Counter(row[0] for row in read() if row[1] in items)
    users = {user for user, n in user_rows.items() if n >= min_user_items}
    return (row for row in read() if row[1] in items and row[0] in users)


def liang_msd_rows(paths, progress=True):
    """:func:`msd_rows` filtered as Liang et al. filter the MSD."""
    return filter_once(lambda: msd_rows(paths, progress), MSD_MIN_SONG_USERS, MSD_MIN_USER_SONGS)


#: format -> (row reader, header, default dataset name, input file pattern for a folder)
FORMATS = {
    "movielens": (movielens_rows, MOVIELENS_HEADER, None, "ratings.*"),
    "netflix": (netflix_rows, NETFLIX_HEADER, "netflix", "mv_*.txt"),
    "msd": (liang_msd_rows, MSD_HEADER, "msd", "train_triplets.txt"),
}

#: dataset name -> (format, its raw input as the public archive names it)
RAW_INPUTS = {
    "ml-1m": ("movielens", "ml-1m/ratings.dat"),
    "ml-10m": ("movielens", "ml-10M100K/ratings.dat"),
    "ml-20m": ("movielens", "ml-20m/ratings.csv"),
    "ml-25m": ("movielens", "ml-25m/ratings.csv"),
    "ml-32m": ("movielens", "ml-32m/ratings.csv"),
    "netflix": ("netflix", "training_set/"),
    "msd": ("msd", "train_triplets.txt"),
}


def convert_command(dataset, output):
    """The command that writes ``output/<dataset>/<dataset>.inter`` from the dataset's
    raw files, or None when this converter does not read its raw format."""
    if dataset not in RAW_INPUTS:
        return None
    kind, raw = RAW_INPUTS[dataset]
    name = "" if FORMATS[kind][2] == dataset else f" --name {dataset}"
    return f"python -m recbole_anchor.data.convert {kind} {raw} --output {output}{name}"


def input_files(inputs, pattern):
    """Files named by ``inputs``; a folder stands for its files matching ``pattern``."""
    paths = []
    for entry in inputs:
        if os.path.isdir(entry):
            found = sorted(glob.glob(os.path.join(entry, pattern)))
            if not found:
                raise MalformedDatasetError(f"{entry}: no {pattern} files in this folder")
            paths.extend(found)
        elif os.path.isfile(entry):
            paths.append(entry)
        else:
            raise MalformedDatasetError(f"{entry}: no such file or folder")
    return paths


def convert(kind, inputs, output, name=None, progress=True):
    """Write ``output/<name>/<name>.inter`` from the raw files ``inputs``; returns the
    path written and the number of interactions."""
    reader, header, default_name, pattern = FORMATS[kind]
    name = name or default_name
    if not name:
        raise RecBoleAnchorError(f"give the dataset a name with --name (e.g. ml-20m) for {kind}")
    paths = input_files(inputs, pattern)
    folder = os.path.join(output, name)
    os.makedirs(folder, exist_ok=True)
    target = os.path.join(folder, name + ".inter")
    partial = target + ".part"
    count = 0
    try:
        with open(partial, "w", encoding="utf-8") as out:
            out.write(header + "\n")
            for row in reader(paths, progress):
                out.write("\t".join(row) + "\n")
                count += 1
    except BaseException:
        os.remove(partial)
        raise
    os.replace(partial, target)
    return target, count


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m recbole_anchor.data.convert",
        description="Convert raw MovieLens / Netflix Prize / MSD files to RecBole atomic files.",
    )
    parser.add_argument("format", choices=sorted(FORMATS))
    parser.add_argument("inputs", nargs="+", help="raw files, or a folder of them")
    parser.add_argument("--output", required=True, help="data_path: DIR/<name>/<name>.inter is written")
    parser.add_argument("--name", default=None, help="dataset name (default: netflix, msd)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        target, count = convert(args.format, args.inputs, args.output, args.name,
                                progress=not args.no_progress)
    except RecBoleAnchorError as err:
        print(f"convert: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {count} interactions to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
