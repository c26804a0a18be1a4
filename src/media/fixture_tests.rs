//! The parsers against real payloads (`tests/fixtures/`, with their provenance there).

use super::jellyfin::{self, Flavor};
use super::model::{Decision, MediaType, PlaybackState};
use super::plex::{parse_body, parse_sessions, parse_source};

fn fixture(path: &str) -> String {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full)
        .unwrap_or_else(|e| panic!("{full}: {e}"))
        // Home Assistant's captures carry str.format placeholders.
        .replace("{user_id}", "1")
        .replace("{name}", "Plex Server")
        .replace("{machine_identifier}", "abc123")
}

fn plex(path: &str) -> Vec<super::ActiveSession> {
    let text = fixture(path);
    parse_sessions(&parse_body(text.as_bytes(), None).unwrap()).unwrap()
}

#[test]
fn plex_lan_movie_transcoding_audio() {
    let sessions = plex("plex/session_base.xml");
    assert_eq!(sessions.len(), 1);
    let s = &sessions[0];
    assert_eq!(s.session_id, "1");
    assert_eq!(s.control_id.as_deref(), Some("session_id_1"), "terminate needs Session@id");
    assert_eq!((s.user.external_id.as_str(), s.user.name.as_str()), ("1", "User 1"));
    assert!(s.server_says_local);
    assert_eq!(s.ip.unwrap().to_string(), "1.2.3.11", "local player: Player.address");
    assert_eq!(s.player.device_id, "1234567890123456-com-plexapp-android");
    assert_eq!(s.player.product.as_deref(), Some("Plex for Android (TV)"));
    assert_eq!(s.player.platform.as_deref(), Some("Android"));
    assert_eq!(s.item.media_type, Some(MediaType::Movie));
    assert_eq!((s.item.title.as_str(), s.item.year), ("Movie 1", Some(2000)));
    assert_eq!(s.item.duration_ms, Some(9_000_000));
    assert_eq!(s.item.thumb.as_deref(), Some("/library/metadata/1/thumb/1590245989"));
    assert_eq!(s.state, PlaybackState::Playing);
    // Video copied, audio DTS transcoded: a transcode, with its reason.
    assert_eq!(s.stream.decision, Decision::Transcode);
    assert_eq!(s.stream.video_decision.as_deref(), Some("copy"));
    assert_eq!(s.stream.audio_decision.as_deref(), Some("transcode"));
    assert_eq!(s.stream.stream_resolution.as_deref(), Some("720p"));
    assert_eq!(s.stream.bandwidth_kbps, Some(7000));
}

#[test]
fn plex_pre_rolls_and_unknown_extras_are_not_playbacks() {
    assert!(plex("plex/session_transient.xml").is_empty());
    assert!(plex("plex/session_unknown.xml").is_empty());
}

#[test]
fn plex_live_tv_without_user_or_player_is_skipped_not_an_error() {
    // Home Assistant's Live TV capture has no User and no Player: nothing to attribute.
    assert!(plex("plex/livetv_sessions.xml").is_empty());
}

#[test]
fn plex_three_sessions_of_an_old_server() {
    let sessions = plex("plex/fuzeman_status_sessions.xml");
    assert_eq!(sessions.len(), 3);
    let kinds: Vec<_> = sessions.iter().map(|s| s.item.media_type.unwrap()).collect();
    assert_eq!(kinds, [MediaType::Episode, MediaType::Movie, MediaType::Track]);
    let track = &sessions[2];
    assert_eq!(track.item.title, "Don't look back");
    assert_eq!(track.item.grandparent_title.as_deref(), Some("Télépopmusik"));
    assert_eq!(track.stream.decision, Decision::DirectPlay);
    assert_eq!(sessions[0].item.grandparent_title.as_deref(), Some("30 Rock"));
    assert_eq!((sessions[0].item.season, sessions[0].item.episode), (Some(1), Some(3)));
    // No User@id or machineIdentifier on this old server: stable fallbacks.
    assert_eq!(sessions[0].user.external_id, "someone");
    assert_eq!(sessions[0].player.device_id, "One|Plex Home Theater");
    assert!(sessions.iter().all(|s| s.control_id.is_none()));
}

#[test]
fn plex_json_music_track_with_two_versions() {
    let sessions = plex("plex/status_sessions_plexamp_tidal_track.json");
    assert_eq!(sessions.len(), 1);
    let s = &sessions[0];
    assert_eq!(s.session_id, "453");
    assert_eq!(s.item.media_type, Some(MediaType::Track));
    assert_eq!(s.item.title, "Roses");
    assert_eq!(s.item.grandparent_title.as_deref(), Some("OutKast"));
    assert_eq!(s.item.library_name.as_deref(), Some("Music"));
    assert_eq!(s.user.name, "Sentryism");
    assert!(!s.server_says_local, "Player.local is false in JSON");
    assert_eq!(s.ip.unwrap().to_string(), "172.17.0.1");
    assert_eq!(s.player.product.as_deref(), Some("Plexamp"));
    assert_eq!(
        s.item.thumb.as_deref(),
        Some("/library/metadata/9561/thumb/1644407962"),
        "album art"
    );
    assert_eq!(s.progress_ms, Some(258));
    assert_eq!(s.stream.decision, Decision::DirectPlay);
}

#[test]
fn plex_streammon_sessions_skip_the_trailer() {
    let sessions = plex("plex/streammon_sessions.xml");
    let titles: Vec<_> = sessions.iter().map(|s| s.item.title.as_str()).collect();
    assert_eq!(titles, ["Inception", "Ozymandias"]);
    let inception = &sessions[0];
    assert_eq!(inception.control_id.as_deref(), Some("abc123"));
    assert_eq!(inception.stream.decision, Decision::DirectStream, "video and audio copied");
    assert!(inception.stream.hw_decode && !inception.stream.hw_encode);
    assert_eq!(inception.stream.bandwidth_kbps, Some(12000));
    let ozymandias = &sessions[1];
    assert_eq!(
        ozymandias.stream.decision,
        Decision::Transcode,
        "stream-level decision without a TranscodeSession"
    );
    assert_eq!(ozymandias.stream.stream_resolution.as_deref(), Some("4K"));
}

#[test]
fn plex_identity_accounts_and_source_quality() {
    let root = parse_body(fixture("plex/plex_server_base.xml").as_bytes(), None).unwrap();
    assert_eq!(root.attr("friendlyName"), Some("Plex Server"));
    assert_eq!(root.attr("version"), Some("1.20.4.3517-ab5e1197c"));
    assert_eq!(root.attr("machineIdentifier"), Some("abc123"));
    let old = parse_body(fixture("plex/fuzeman_server_root.xml").as_bytes(), None).unwrap();
    assert_eq!(old.attr("version"), Some("0.9.9.16.555-50cd0c3"));

    let accounts = parse_body(fixture("plex/plex_server_accounts.xml").as_bytes(), None).unwrap();
    let names: Vec<_> = accounts.children_named("Account").filter_map(|a| a.attr("name")).collect();
    assert_eq!(names, ["User 1", "User 1000", "User 1001"]);

    let media = parse_body(fixture("plex/media_1.xml").as_bytes(), None).unwrap();
    let source = parse_source(&media).unwrap();
    assert_eq!(source.resolution.as_deref(), Some("720p"));
    assert_eq!(source.bitrate_kbps, Some(7500));
}

#[test]
fn jellyfin_sessions() {
    let sessions =
        jellyfin::parse_sessions(fixture("jellyfin/sessions.json").as_bytes(), Flavor::Jellyfin)
            .unwrap();
    assert_eq!(sessions.len(), 2, "the idle client is skipped");
    let movie = &sessions[0];
    assert_eq!(movie.item.title, "Big Buck Bunny");
    assert_eq!(movie.stream.decision, Decision::DirectPlay);
    assert_eq!(movie.stream.source_resolution.as_deref(), Some("1080p"));
    assert_eq!(movie.ip.unwrap().to_string(), "192.168.1.50");
    assert_eq!(movie.player.platform.as_deref(), Some("Tv"));
    assert_eq!(movie.progress_ms, Some(1_234_567));
    let episode = &sessions[1];
    assert_eq!(episode.user.name, "mallory");
    assert_eq!(episode.ip.unwrap().to_string(), "81.2.69.142", "port stripped");
    assert_eq!(episode.state, PlaybackState::Paused);
    assert_eq!(episode.stream.decision, Decision::Transcode);
    assert_eq!(episode.stream.source_resolution.as_deref(), Some("4K"));
    assert_eq!(episode.stream.stream_resolution.as_deref(), Some("1080p"));
    assert!(episode.stream.hw_decode && episode.stream.hw_encode);
    assert_eq!(
        episode.stream.transcode_reasons,
        ["VideoCodecNotSupported", "AudioCodecNotSupported"]
    );
    assert_eq!(episode.stream.source_bitrate_kbps, Some(22_640));
    assert_eq!(episode.stream.bandwidth_kbps, Some(8_616));
    assert_eq!(episode.item.grandparent_title.as_deref(), Some("Game of Thrones"));
    assert_eq!((episode.item.season, episode.item.episode), (Some(8), Some(3)));
    assert!(!episode.can_control, "SupportsMediaControl false");
}

#[test]
fn emby_sessions() {
    let sessions =
        jellyfin::parse_sessions(fixture("emby/sessions.json").as_bytes(), Flavor::Emby).unwrap();
    assert_eq!(sessions.len(), 2, "the trailer is skipped");
    let movie = &sessions[0];
    assert_eq!(movie.stream.decision, Decision::Transcode, "audio transcoded");
    assert_eq!(movie.stream.video_decision.as_deref(), Some("copy"));
    assert_eq!(movie.ip.unwrap().to_string(), "216.160.83.56");
    assert!(!movie.stream.hw_decode);
    let track = &sessions[1];
    assert_eq!(track.item.media_type, Some(MediaType::Track));
    assert_eq!(track.item.grandparent_title.as_deref(), Some("Claude Debussy"));
    assert_eq!(track.item.thumb.as_deref(), Some("/Items/7700/Images/Primary"));
    assert!(!track.can_control, "SupportsRemoteControl false");

    let streammon =
        jellyfin::parse_sessions(fixture("emby/streammon_sessions.json").as_bytes(), Flavor::Emby);
    // StreamMon's hand-written rows have no UserId: nothing to attribute them to.
    assert_eq!(streammon.unwrap().len(), 0);
}

#[test]
fn jellyfin_media_sources_from_the_server_test_data() {
    for (file, resolution, bitrate) in [
        ("jellyfin/MediaSourceInfo-mkv-dvhe.08-eac3-15200k.json", "1080p", 15_200),
        ("jellyfin/MediaSourceInfo-mp4-h264-aac-srt-2600k.json", "720p", 2_600),
    ] {
        let source: serde_json::Value = serde_json::from_str(&fixture(file)).unwrap();
        let row = serde_json::json!([{
            "Id": "s", "UserId": "u", "UserName": "n",
            "NowPlayingItem": {"Id": "i", "Name": "x", "Type": "Movie", "MediaSources": [source]},
            "PlayState": {"PlayMethod": "DirectPlay"}
        }]);
        let sessions =
            jellyfin::parse_sessions(row.to_string().as_bytes(), Flavor::Jellyfin).unwrap();
        let stream = &sessions[0].stream;
        assert_eq!(stream.source_resolution.as_deref(), Some(resolution), "{file}");
        let kbps = stream.source_bitrate_kbps.unwrap();
        assert!((kbps - bitrate).abs() < 600, "{file}: {kbps}");
    }
}

mod libraries {
    use super::super::library::{ItemKind, LibraryKind};
    use super::super::plex::{parse_body, parse_library_page, parse_sections};
    use super::fixture;

    fn page(path: &str) -> super::super::plex::LibraryPage {
        let text = fixture(path);
        parse_library_page(&parse_body(text.as_bytes(), None).unwrap()).unwrap()
    }

    #[test]
    fn plex_sections_of_every_kind() {
        let text = fixture("plex/library_sections.xml");
        let sections = parse_sections(&parse_body(text.as_bytes(), None).unwrap()).unwrap();
        let seen: Vec<(&str, &str, LibraryKind)> =
            sections.iter().map(|l| (l.external_id.as_str(), l.name.as_str(), l.kind)).collect();
        assert_eq!(
            seen,
            [
                ("1", "Movies", LibraryKind::Movie),
                ("2", "TV Shows", LibraryKind::Show),
                ("3", "Music", LibraryKind::Music)
            ]
        );
    }

    #[test]
    fn plex_movies_with_sizes_resolutions_and_views() {
        let page = page("plex/library_sections_1_all.movies.json");
        assert_eq!((page.entries, page.items.len()), (10, 10));
        let sd = &page.items[0];
        assert_eq!(
            (sd.external_id.as_str(), sd.title.as_str(), sd.year),
            ("28550", "4 for Texas", Some(1963))
        );
        assert_eq!(sd.kind, Some(ItemKind::Movie));
        assert_eq!((sd.width, sd.height, sd.size_bytes), (Some(640), Some(368), 1_468_592_128));
        assert_eq!(sd.added_at, Some(1_586_886_369_000), "seconds become milliseconds");
        assert_eq!((sd.view_count, sd.last_viewed_at), (0, None));
        assert_eq!(sd.thumb.as_deref(), Some("/library/metadata/28550/thumb/1719370467"));
        let watched = page.items.iter().find(|i| i.external_id == "23922").unwrap();
        assert_eq!((watched.view_count, watched.last_viewed_at), (1, Some(1_563_149_090_000)));
        assert_eq!((watched.width, watched.height), (Some(1920), Some(800)));
        let big = page.items.iter().find(|i| i.title == "300").unwrap();
        assert_eq!((big.height, big.size_bytes), (Some(2160), 56_679_095_113));
        // This capture was taken without includeGuids: only the plex:// guid, no ids.
        assert!(page.items.iter().all(|i| i.ids.is_empty()));
    }

    #[test]
    fn plex_episodes_bring_their_seasons() {
        let page = page("plex/library_sections_all.type4_episodes.json");
        assert_eq!(page.entries, 10);
        let seasons: Vec<_> =
            page.items.iter().filter(|i| i.kind == Some(ItemKind::Season)).collect();
        assert_eq!(seasons.len(), 2, "two seasons, once each");
        assert_eq!(seasons[0].external_id, "45521");
        assert_eq!(seasons[0].show_external_id.as_deref(), Some("45520"));
        assert_eq!(seasons[0].show_title.as_deref(), Some("Alice in Borderland"));
        assert_eq!((seasons[0].season_number, seasons[0].title.as_str()), (Some(1), "Season 1"));
        let first = page.items.iter().find(|i| i.external_id == "45522").unwrap();
        assert_eq!(first.kind, Some(ItemKind::Episode));
        assert_eq!((first.season_number, first.episode_number), (Some(1), Some(1)));
        assert_eq!(first.show_external_id.as_deref(), Some("45520"));
        assert_eq!((first.height, first.size_bytes), (Some(2160), 4_354_485_068));
        assert_eq!((first.view_count, first.last_viewed_at), (1, Some(1_633_889_060_000)));
        assert_eq!(first.ids.tvdb.as_deref(), Some("7945991"));
        assert_eq!(page.items.len(), 12);
    }

    #[test]
    fn plex_shows_with_legacy_agent_ids() {
        let page = page("plex/library_sections_all.type2_shows.json");
        assert_eq!((page.entries, page.items.len()), (26, 26));
        let titan = page.items.iter().find(|i| i.title == "Attack on Titan").unwrap();
        assert_eq!(titan.kind, Some(ItemKind::Show));
        assert_eq!(titan.ids.tvdb.as_deref(), Some("267440"));
        assert_eq!((titan.view_count, titan.last_viewed_at), (95, Some(1_723_324_718_000)));
        assert_eq!((titan.size_bytes, titan.height), (0, None), "a show's files are its episodes'");
        assert!(titan.show_external_id.is_none());
    }

    #[test]
    fn plex_xml_listings_read_like_json_ones() {
        let movies = page("plex/library_movies_all.xml");
        assert_eq!(movies.entries, 5);
        let first = &movies.items[0];
        assert_eq!((first.external_id.as_str(), first.title.as_str()), ("1", "Movie 1"));
        assert_eq!(first.ids.imdb.as_deref(), Some("tt0123456"), "legacy imdb agent");
        assert_eq!((first.view_count, first.last_viewed_at), (1, Some(1_505_969_509_000)));
        // An old server's show listing has neither ratingKeys nor media: nothing to keep.
        let old = page("plex/fuzeman_library_shows_all.xml");
        assert_eq!((old.entries, old.items.len()), (2, 0));
    }
}

mod jellyfin_libraries {
    use super::super::jellyfin::{Flavor, parse_items, parse_virtual_folders};
    use super::super::library::{ItemKind, LibraryKind};
    use super::fixture;

    #[test]
    fn virtual_folders_of_jellyfin_and_emby() {
        let folders = parse_virtual_folders(
            fixture("jellyfin/virtual_folders.json").as_bytes(),
            Flavor::Jellyfin,
        )
        .unwrap();
        let kinds: Vec<(&str, LibraryKind)> =
            folders.iter().map(|l| (l.name.as_str(), l.kind)).collect();
        assert_eq!(
            kinds,
            [
                ("Movies", LibraryKind::Movie),
                ("Shows", LibraryKind::Show),
                ("Music", LibraryKind::Music),
                ("Home videos", LibraryKind::Other)
            ]
        );
        assert_eq!(folders[0].external_id, "f137a2dd21bbc1b99aa5c0f6bf02a805");
        let emby = parse_virtual_folders(
            fixture("emby/virtual_folders_query.json").as_bytes(),
            Flavor::Emby,
        )
        .unwrap();
        assert_eq!((emby[0].external_id.as_str(), emby[0].kind), ("3", LibraryKind::Movie));
    }

    #[test]
    fn movies_with_the_servers_media_sources() {
        let (items, total) = parse_items(fixture("jellyfin/items_movies.json").as_bytes()).unwrap();
        assert_eq!((items.len(), total), (2, Some(3)), "the trailer is not an item");
        let sintel = &items[0];
        assert_eq!(sintel.kind, Some(ItemKind::Movie));
        assert_eq!(sintel.size_bytes, 344_509_829, "MediaSources[].Size");
        assert_eq!((sintel.width, sintel.height), (Some(1920), Some(1080)));
        assert_eq!(sintel.ids.tmdb.as_deref(), Some("45745"));
        assert_eq!(sintel.ids.imdb.as_deref(), Some("tt1727587"));
        assert_eq!(sintel.view_count, 2);
        assert_eq!(sintel.last_viewed_at, Some(1_709_410_531_123));
        assert_eq!(sintel.added_at, Some(1_672_912_800_000));
        assert_eq!(
            sintel.thumb.as_deref(),
            Some("/Items/0b2c6a3f9d8e4a7b8c1d2e3f4a5b6c7d/Images/Primary")
        );
        let bunny = &items[1];
        assert_eq!(bunny.size_bytes, 2 * 835_317_696, "both versions go with the item");
        assert_eq!((bunny.width, bunny.height), (Some(1280), Some(720)), "integer stream types");
        assert_eq!((bunny.view_count, bunny.last_viewed_at), (0, None));
    }

    #[test]
    fn shows_seasons_and_episodes() {
        let (items, _) = parse_items(fixture("jellyfin/items_shows.json").as_bytes()).unwrap();
        let kinds: Vec<ItemKind> = items.iter().map(|i| i.kind.unwrap()).collect();
        assert_eq!(kinds, [ItemKind::Show, ItemKind::Season, ItemKind::Episode]);
        assert_eq!(items[0].ids.tvdb.as_deref(), Some("72362"));
        assert!(items[0].show_external_id.is_none());
        assert_eq!(items[1].season_number, Some(1));
        assert_eq!(items[1].show_external_id.as_deref(), Some("aa01"));
        let ep = &items[2];
        assert_eq!((ep.season_number, ep.episode_number), (Some(1), Some(1)));
        assert_eq!(ep.show_title.as_deref(), Some("Cosmos"));
        assert_eq!((ep.view_count, ep.size_bytes), (1, 835_317_696));
    }

    #[test]
    fn malformed_listings_are_errors() {
        for bad in [&b""[..], b"[]", b"{\"Items\": 5}", b"{\"Items\": [{\"Id\": 5}]}"] {
            assert!(parse_items(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
